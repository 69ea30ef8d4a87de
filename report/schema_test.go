package report_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

// schemaTime is a probe time outside UTC: records must carry it in UTC.
var schemaTime = time.Date(2026, 3, 24, 1, 2, 3, 456789e3, time.FixedZone("CET", 3600))

var schemaEnrich = enrich.Result{
	Names: []string{"ntp1.example.net"},
	ASN: enrich.ASN{Number: 64496, Name: "EXAMPLE-AS", Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "DE",
		Registry: "ripencc"},
	Geo: enrich.Geo{Country: "DE", Region: "Hessen", City: "Frankfurt am Main", Latitude: 50.1, Longitude: 8.7,
		HasCoordinates: true},
	Abuse: enrich.Abuse{Email: "abuse@example.net", Handle: "AB123-RIPE", Source: "rdap"},
	NAICS: 517311, Sector: "Communications, Service Provider, and Hosting Service",
}

// monitorResults are monlist results of every status.
func monitorResults() map[string]ntpctl.Result[mode7.Reply] {
	ok := ntpctl.Result[mode7.Reply]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.20:123"), Status: ntpctl.StatusOK,
			Time: schemaTime, Attempts: 1, RTT: 1500 * time.Microsecond, Packets: 2, Bytes: 520, RequestBytes: 48},
		Value: mode7.Reply{
			ReassemblyStats: mode7.ReassemblyStats{Packets: 2, Bytes: 520, Accepted: 2, Duplicates: 1},
			Impl:            mode7.ImplXNTPD, Code: 42, Version: 2, ItemSize: mode7.ItemSizeMonitor1, LastSeq: 1, Complete: true,
			Entries: []mode7.MonitorEntry{
				{Addr: netip.MustParseAddr("198.51.100.1"), LocalAddr: netip.MustParseAddr("192.0.2.20"), Port: 40000,
					Mode: 3, Version: 4, Count: 12, AvgInt: 64, LastInt: 3, Restrict: 0x1d0, Flags: 1},
				{Addr: netip.MustParseAddr("2001:db8::5"), LocalAddr: netip.MustParseAddr("2001:db8::20"), Port: 123,
					Mode: 7, Version: 2, Count: 4294967295},
			},
		},
	}
	old := ok
	old.Target = netip.MustParseAddrPort("[2001:db8::20]:10123")
	old.Value.ItemSize = mode7.ItemSizeOldMonitor
	old.Value.Entries = []mode7.MonitorEntry{{Addr: netip.MustParseAddr("198.51.100.2"), Port: 123, Mode: 3,
		Version: 3, Count: 1, LastInt: 10, FirstInt: 5000}}

	partial := ok
	partial.Status, partial.Err = ntpctl.StatusPartial, fmt.Errorf("monlist: %w: sequence numbers 3, 6 missing", mode7.ErrIncomplete)
	partial.Value.Complete, partial.Value.Missing, partial.Value.LastSeq = false, []uint8{3, 6}, 7
	partial.Value.Err = partial.Err

	disabled := ntpctl.Result[mode7.Reply]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.21:123"), Status: ntpctl.StatusServerError,
			Err: fmt.Errorf("monlist: %w", mode7.InfoErrNoData), Time: schemaTime, Attempts: 1,
			RTT: 300 * time.Microsecond, Packets: 1, Bytes: 8, RequestBytes: 48},
		Value: mode7.Reply{ReassemblyStats: mode7.ReassemblyStats{Packets: 1, Bytes: 8}, Impl: mode7.ImplXNTPD, Code: 42,
			Version: 2, LastSeq: -1, Err: mode7.InfoErrNoData},
	}
	malformed := ntpctl.Result[mode7.Reply]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.22:123"), Status: ntpctl.StatusProtocolError,
			Err: errors.New("monlist: no usable reply"), Time: schemaTime, Attempts: 2, RTT: time.Millisecond,
			Packets: 3, Bytes: 1500, RequestBytes: 48},
		Value: mode7.Reply{ReassemblyStats: mode7.ReassemblyStats{Packets: 3, Bytes: 1500, Malformed: 2, Mismatched: 1,
			Conflicting: 1, OverCap: 1}, LastSeq: -1},
	}
	silent := func(status ntpctl.Status, err error, attempts int) ntpctl.Result[mode7.Reply] {
		return ntpctl.Result[mode7.Reply]{Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("[2001:db8::9]:123"),
			Status: status, Err: err, Time: schemaTime, Attempts: attempts, RequestBytes: 48}}
	}
	return map[string]ntpctl.Result[mode7.Reply]{
		"ok": ok, "ok old layout ipv6": old, "partial": partial, "server_error": disabled, "protocol_error": malformed,
		"no_answer":  silent(ntpctl.StatusNoAnswer, ntpctl.ErrNoAnswer, 2),
		"send_error": silent(ntpctl.StatusSendError, errors.New("sendmmsg: network is unreachable"), 0),
		"blocked":    silent(ntpctl.StatusBlocked, fmt.Errorf("%w: 192.0.2.0/24 (documentation)", ntpctl.ErrBlocked), 0),
		"repeated":   silent(ntpctl.StatusRepeated, ntpctl.ErrRepeated, 0),
	}
}

// mruResults are MRU list results: a whole list, a refused page, a
// nonce without a list and silence.
func mruResults() map[string]ntpctl.Result[ntpctl.MRUResult] {
	ok := mruResult()
	refused := ok
	refused.Status, refused.Err = ntpctl.StatusPartial, mode6.ServerError(6)
	refused.Value.Complete, refused.Value.Err = false, mode6.ServerError(6)
	nolist := ntpctl.Result[ntpctl.MRUResult]{Outcome: ntpctl.Outcome{Target: ok.Target, Time: ok.Time,
		Status: ntpctl.StatusProtocolError, Attempts: 2, Packets: 1, Bytes: 40, RequestBytes: 12, Err: ntpctl.ErrMRUNoList},
		Value: ntpctl.MRUResult{Nonce: true, Pages: 0, Err: ntpctl.ErrMRUNoList}}
	return map[string]ntpctl.Result[ntpctl.MRUResult]{"ok": ok, "refused": refused, "no list": nolist,
		"no_answer": {Outcome: ntpctl.Outcome{Target: ok.Target, Time: ok.Time, Status: ntpctl.StatusNoAnswer,
			Attempts: 1, RequestBytes: 12, Err: ntpctl.ErrNoAnswer}}}
}

// accessibleResults are Mode 3 results: a synchronised server, one
// that never set its clock (INIT), a kiss-o'-death and silence.
func accessibleResults() map[string]ntpctl.Result[ntpctl.TimePacket] {
	ts := mode6.TimestampOf(schemaTime)
	ok := ntpctl.Result[ntpctl.TimePacket]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.44:123"), Status: ntpctl.StatusOK,
			Time: schemaTime, Attempts: 1, RTT: time.Millisecond, Packets: 1, Bytes: 48, RequestBytes: 48},
		Value: ntpctl.TimePacket{Version: 4, Mode: 4, Stratum: 2, Poll: 6, Precision: -24, RootDelay: 0x0000_0a3d,
			RootDispersion: 0x0000_1234, RefID: [4]byte{192, 0, 2, 1}, Reference: ts - 64<<32, Receive: ts, Transmit: ts},
	}
	init := ok
	init.Value.Leap, init.Value.Stratum, init.Value.RefID, init.Value.Reference = 3, 0, [4]byte{'I', 'N', 'I', 'T'}, 0
	kiss := ok
	kiss.Status, kiss.Err = ntpctl.StatusServerError, ntpctl.KissError("RATE")
	kiss.Value.Stratum, kiss.Value.RefID = 0, [4]byte{'R', 'A', 'T', 'E'}
	return map[string]ntpctl.Result[ntpctl.TimePacket]{"ok": ok, "init": init, "kiss": kiss,
		"no_answer": {Outcome: ntpctl.Outcome{Target: ok.Target, Time: ok.Time, Status: ntpctl.StatusNoAnswer,
			Attempts: 2, RequestBytes: 48, Err: ntpctl.ErrNoAnswer}}}
}

// versionResults are READVAR results of every status.
func versionResults() map[string]ntpctl.Result[mode6.Reply] {
	text := []byte(`version="ntpd 4.2.8p15@1.3728-o", processor="x86_64", leap=0, stratum=2, refid=192.0.2.1, ` +
		`reftime=0xe1198a1c.5f3e1b2a, evil="` + "\x1b]0;owned\x07\u009b2J\u202e\xff" + `", bare, tai=37`)
	vars, ps := mode6.ParseVars(text)
	ok := ntpctl.Result[mode6.Reply]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("[::ffff:198.51.100.7]:123"), Status: ntpctl.StatusOK,
			Time: schemaTime, Attempts: 1, RTT: 250 * time.Microsecond, Packets: 1, Bytes: 468, RequestBytes: 12},
		Value: mode6.Reply{ReassemblyStats: mode6.ReassemblyStats{Packets: 1, Bytes: 468, Fragments: 1},
			Op: mode6.OpReadVar, Version: 2, Leap: 0, Status: 0x0615, Data: text, Complete: true, Vars: vars, Parse: ps},
	}
	v6 := ok
	v6.Target = netip.MustParseAddrPort("[2001:db8::123]:123")
	v6.Value.Data, v6.Value.Vars, v6.Value.Parse = nil, mode6.Vars{{Name: "version", Value: "ntpsec 1.2.2", Quoted: true}},
		mode6.ParseStats{}

	partial := ok
	partial.Status, partial.Err = ntpctl.StatusPartial, fmt.Errorf("readvar: %w: octets 468 to 936 missing", mode6.ErrIncomplete)
	partial.Value.Complete, partial.Value.Holes = false, []mode6.Span{{Start: 468, End: 936}}
	partial.Value.ReassemblyStats = mode6.ReassemblyStats{Packets: 3, Bytes: 1400, Fragments: 2, Duplicates: 1,
		Overlaps: 1, Malformed: 1, Mismatched: 1, Conflicting: 1, OverCap: 1}

	badAssoc := ntpctl.Result[mode6.Reply]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.30:123"), Status: ntpctl.StatusServerError,
			Err: fmt.Errorf("readvar: %w", mode6.CErrBadAssoc), Time: schemaTime, Attempts: 1, RTT: time.Millisecond,
			Packets: 1, Bytes: 12, RequestBytes: 12},
		Value: mode6.Reply{ReassemblyStats: mode6.ReassemblyStats{Packets: 1, Bytes: 12}, Op: mode6.OpReadVar, Version: 2,
			Leap: 3, Status: 0x0400, AssocID: 7, Err: mode6.CErrBadAssoc},
	}
	unspec := badAssoc
	unspec.Err, unspec.Value.Err, unspec.Value.Status, unspec.Value.AssocID = fmt.Errorf("readvar: %w", mode6.CErrUnspec),
		mode6.CErrUnspec, 0, 0
	garbage := ntpctl.Result[mode6.Reply]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.31:123"), Status: ntpctl.StatusProtocolError,
			Err: errors.New("readvar: no usable reply"), Time: schemaTime, Attempts: 1, RTT: time.Millisecond,
			Packets: 2, Bytes: 100, RequestBytes: 12},
		Value: mode6.Reply{ReassemblyStats: mode6.ReassemblyStats{Packets: 2, Bytes: 100, Malformed: 2}},
	}
	silent := func(status ntpctl.Status, err error) ntpctl.Result[mode6.Reply] {
		return ntpctl.Result[mode6.Reply]{Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.32:123"),
			Status: status, Err: err, Time: schemaTime, Attempts: 2, RequestBytes: 12}}
	}
	return map[string]ntpctl.Result[mode6.Reply]{
		"ok": ok, "ok ipv6": v6, "partial": partial, "server_error": badAssoc, "server_error CERR_UNSPEC": unspec,
		"protocol_error": garbage,
		"no_answer":      silent(ntpctl.StatusNoAnswer, ntpctl.ErrNoAnswer),
		"send_error":     silent(ntpctl.StatusSendError, errors.New("sendmmsg: operation not permitted")),
		"blocked":        silent(ntpctl.StatusBlocked, ntpctl.ErrBlocked),
		"repeated":       silent(ntpctl.StatusRepeated, ntpctl.ErrRepeated),
	}
}

// records returns the records of every result, with and without
// enrichment, as JSON lines and as documents, and the records themselves.
func records(t *testing.T) ([]schematest.Doc, map[string]report.JSONRecord) {
	t.Helper()
	var docs []schematest.Doc
	recs := map[string]report.JSONRecord{}
	add := func(name, def string, rec report.JSONRecord) {
		var buf bytes.Buffer
		require.NoError(t, report.NewJSONWriter(&buf).Write(&rec), name)
		docs = append(docs, schematest.Doc{Def: "record", JSON: buf.Bytes()})
		switch rec.Status { // ntpctl fails instead of printing the others
		case ntpctl.StatusOK, ntpctl.StatusNoAnswer, ntpctl.StatusPartial, ntpctl.StatusProtocolError,
			ntpctl.StatusServerError:
			docs = append(docs, schematest.Doc{Def: def, JSON: buf.Bytes()})
		}
		recs[name] = rec
	}
	for name, res := range monitorResults() {
		add("monitor "+name, "ntpctl_monlist", report.NewRecord(&res, enrich.Result{}))
		add("monitor "+name+" enriched", "ntpctl_monlist", report.NewRecord(&res, schemaEnrich))
	}
	for name, res := range versionResults() {
		add("version "+name, "ntpctl_rv", report.NewRecord(&res, enrich.Result{}))
		add("version "+name+" enriched", "ntpctl_rv", report.NewRecord(&res, schemaEnrich))
	}
	for name, res := range mruResults() {
		rec := report.NewRecord(&res, enrich.Result{})
		add("mru "+name, "record", rec)
		if rec.MRU != nil {
			// As the scanner writes it with -mru-clients.
			rec.MRU.Clients = report.MRUEntries(&res.Value, res.Time)
			add("mru "+name+" with clients", "record", rec)
		}
	}
	for name, res := range accessibleResults() {
		add("accessible "+name, "record", report.NewRecord(&res, schemaEnrich))
	}
	return docs, recs
}

// scanStats is a statistics file's object with both probes, counted from
// the results as the scanner counts them.
func scanStats(t *testing.T) report.JSONScanStats {
	t.Helper()
	var mon, ver report.Stats
	for _, res := range monitorResults() {
		mon.AddStatus(res.Status)
		if row, ok := report.NewMonitorRow(res, schemaEnrich, report.BuildOptions{}); ok {
			mon.AddMonitor(&row)
		}
	}
	for _, res := range versionResults() {
		ver.AddStatus(res.Status)
		if row, ok := report.NewVersionRow(res, enrich.Result{}, report.BuildOptions{}); ok {
			ver.AddVersion(&row)
		}
	}
	prober := ntpctl.Stats{Targets: 9, Sent: 12, SendErrors: 1, Retried: 3, Received: 14, Matched: 10, Accepted: 6,
		Duplicates: 1, Malformed: 2, Dropped: 1, Mismatched: 1, Unsolicited: 2, Late: 1, RecvErrors: 1, OverCap: 1,
		Finished: 9, Statuses: ntpctl.StatusCounts{OK: 2, NoAnswer: 1, Partial: 1, ProtocolError: 1, ServerError: 1,
			SendError: 1, Blocked: 1, Repeated: 1}, SendRate: 812.5}
	return report.JSONScanStats{Started: schemaTime.UTC(), Finished: schemaTime.Add(time.Minute).UTC(), Targets: 9,
		TargetsEstimated: true, Interrupted: true, Seed: 1 << 63, Shard: "0/1",
		Monitor:    &report.JSONProbeStats{Report: mon.Summary(), Prober: prober, Replied: 5},
		Version:    &report.JSONProbeStats{Report: ver.Summary(), Prober: prober, Replied: 5},
		Enrichment: report.JSONEnrichStats{Errors: 2}}
}

// labDoc is what `ntpctl lab --json` prints (built by the ntpctl
// command, whose tests validate its real output).
const labDoc = `{"time":"2026-03-24T00:02:03.456789Z","port":40123,"hosts":[
 {"ip":"127.42.0.1","kind":"amplifier","daemon":"ntpd 4.2.6p5","monlist_entries":600},
 {"ip":"127.42.0.2","kind":"monlist_disabled","daemon":"ntpd 4.2.8p15","peer_assoc":18986},
 {"ip":"127.42.0.3","kind":"readvar_only","daemon":"ntpsec 1.2.2"},
 {"ip":"127.42.0.4","kind":"silent"},
 {"ip":"127.42.0.5","kind":"hostile","daemon":"ntpd 4.2.6p5","hostile":"gaps","monlist_entries":60},
 {"ip":"::1","kind":"amplifier","daemon":"ntpd 4.2.6p5","monlist_entries":42}]}`

// allDocs are documents of every kind: records of every status of both
// probes, with and without enrichment, a statistics file, the object of
// ntpctl check of each verdict, and of ntpctl lab.
func allDocs(t *testing.T) []schematest.Doc {
	t.Helper()
	docs, recs := records(t)
	docs = append(docs, schematest.Doc{Def: "scan_stats", JSON: schematest.Marshal(t, scanStats(t))})
	var empty report.JSONScanStats
	empty.Started, empty.Finished, empty.Shard = schemaTime.UTC(), schemaTime.UTC(), "2/3"
	docs = append(docs, schematest.Doc{Def: "scan_stats", JSON: schematest.Marshal(t, empty)})
	one := []store.Count{{Key: "scan_ntp", Count: 3}}
	docs = append(docs,
		schematest.Doc{Def: "store_run_stats", JSON: schematest.Marshal(t, store.RunStats{RunID: 1, Day: "2026-11-30", Rows: one,
			Countries: []store.Count{{Key: "NL", Count: 3}}, ASNs: []store.Count{{Key: "0", Count: 3}}, Daemons: []store.Count{{Key: "", Count: 3}},
			Amplification: []store.Count{{Key: "10-100", Count: 3}}})},
		schematest.Doc{Def: "store_run_stats", JSON: schematest.Marshal(t, store.RunStats{RunID: 2, Day: "2026-12-01"})},
		schematest.Doc{Def: "store_point", JSON: schematest.Marshal(t, store.Point{RunID: 1, Day: "2026-11-30", Complete: true, Rows: one, New: 1, Fixed: 2})},
		schematest.Doc{Def: "store_count", JSON: schematest.Marshal(t, one[0])})
	for _, c := range []report.JSONCheck{
		{Verdict: report.VerdictMonlistAmplifier, Amplification: 520.0 / 48, Remediation: []string{"Upgrade.", "disable monitor"},
			Monitor: recs["monitor ok"], Version: recs["version ok"]},
		{Verdict: report.VerdictMode6Amplifier, Amplification: 39, Remediation: []string{"restrict default noquery"},
			Monitor: recs["monitor server_error"], Version: recs["version ok"]},
		{Verdict: report.VerdictNotAmplifier, Remediation: []string{},
			Monitor: recs["monitor no_answer"], Version: recs["version no_answer"]},
	} {
		c.Time, c.IP, c.Port = c.Monitor.Time, c.Monitor.IP, c.Monitor.Port
		docs = append(docs, schematest.Doc{Def: "ntpctl_check", JSON: schematest.Marshal(t, c)})
	}
	mon, ver := recs["monitor ok"], recs["version server_error"]
	reported := schemaTime.UTC().Add(-24 * time.Hour)
	v := report.JSONVerify{Time: mon.Time,
		Files: []report.JSONVerifyFile{{File: "2026-11-30-scan_ntpmonitor-org.csv", Report: report.ScanNTPMonitor, Rows: 2, Skipped: 1},
			{File: "old.csv", Report: report.ScanNTP, Rows: 1}},
		Counts: report.JSONVerifyCounts{Open: 1, Fixed: 1, Unverified: 1, Skipped: 1},
		Rows: []report.JSONVerifyRow{
			{File: "2026-11-30-scan_ntpmonitor-org.csv", Line: 2, Report: mon.Report, IP: mon.IP, Port: mon.Port,
				Reported: &reported, Verified: report.VerifiedOpen, Detail: "monlist answered", Record: &mon},
			{File: "2026-11-30-scan_ntpmonitor-org.csv", Line: 4, Report: report.ScanNTPMonitor,
				IP: netip.MustParseAddr("224.0.1.1"), Port: 123, Verified: report.VerifiedUnverified, Detail: "not asked: multicast"},
			{File: "old.csv", Line: 2, Report: ver.Report, IP: ver.IP, Port: ver.Port, Verified: report.VerifiedFixed,
				Detail: "READVAR refused", Record: &ver},
		}}
	docs = append(docs, schematest.Doc{Def: "ntpctl_verify", JSON: schematest.Marshal(t, v)})
	for _, p := range []report.JSONPeers{
		{Time: mon.Time, IP: "127.0.0.1", Port: 123, Status: "ok", StatusWord: 0x0615, StatusText: "leap_none, sync_ntp, 1 event, clock_sync",
			Associations: []report.JSONAssoc{{Index: 1, AssocID: 17767, StatusWord: 0x961a, Conf: "yes", Reach: "yes", Auth: "none",
				Condition: "sys.peer", LastEvent: "sys_peer", EventCount: 1}}, Packets: 1, Bytes: 16, RequestBytes: 12, Amplification: 16.0 / 12},
		{Time: mon.Time, IP: "::1", Port: 123, Status: "no_answer", Associations: []report.JSONAssoc{}, Error: "no reply"},
	} {
		docs = append(docs, schematest.Doc{Def: "ntpctl_peers", JSON: schematest.Marshal(t, p)})
	}
	for _, m := range []report.JSONMRUList{
		{Time: mon.Time, IP: "127.0.0.1", Port: 123, Status: "ok", Nonce: true, Complete: true, Pages: 1,
			Entries: []report.JSONMRUEntry{{IP: "192.0.2.7", Port: 40123, Last: mon.Time, First: mon.Time.Add(-time.Hour),
				LstInt: 3, AvgInt: 64.5, Count: 57, Mode: 3, Version: 4, Score: 0.05},
				{IP: "2001:db8::7", Port: 123, Last: mon.Time, First: mon.Time, Count: 1, Mode: 4, Version: 4, Restrict: 0x20, Dropped: 2}},
			Packets: 2, Bytes: 600, RequestBytes: 56, Amplification: 600.0 / 56},
		{Time: mon.Time, IP: "::1", Port: 123, Status: "no_answer", Nonce: true, Entries: []report.JSONMRUEntry{},
			Error: "a nonce, but no answer to READ_MRU"},
	} {
		docs = append(docs, schematest.Doc{Def: "ntpctl_mrulist", JSON: schematest.Marshal(t, m)})
	}
	for _, e := range []report.JSONError{{Command: "check", Error: "want one or more HOST[:PORT]", ExitStatus: 1},
		{Command: "check", Host: "ntp.invalid", Error: `cannot resolve "ntp.invalid": no such host`}} {
		docs = append(docs, schematest.Doc{Def: "ntpctl_error", JSON: schematest.Marshal(t, e)})
	}
	return append(docs, schematest.Doc{Def: "ntpctl_lab", JSON: []byte(labDoc)})
}

// TestSchemaEmbedded: Schema is the file in the repository, a copy each
// time, and a JSON Schema of draft 2020-12 whose every $defs entry
// compiles.
func TestSchemaEmbedded(t *testing.T) {
	file, err := os.ReadFile("schema/ntpctl.schema.json")
	require.NoError(t, err)
	s := report.Schema()
	assert.Equal(t, file, s)
	s[0] = 'x'
	assert.Equal(t, file, report.Schema(), "a copy")

	var top map[string]any
	require.NoError(t, json.Unmarshal(file, &top))
	assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", top["$schema"])
	defs := schematest.Defs(t)
	require.NotEmpty(t, defs)
	for _, d := range defs {
		def := schematest.Def(t, d)
		assert.NotEmpty(t, def["description"], "$defs/%s has a description", d)
		if props, ok := def["properties"].(map[string]any); ok {
			for name, p := range props {
				desc, _ := p.(map[string]any)["description"].(string)
				if desc == "" { // a $ref to a described entry is described there
					ref, _ := p.(map[string]any)["$ref"].(string)
					desc, _ = schematest.Def(t, strings.TrimPrefix(ref, "#/$defs/"))["description"].(string)
				}
				assert.NotEmpty(t, desc, "$defs/%s: %s has a description", d, name)
			}
		}
	}
	schematest.CompileAll(t)
}

// TestRecordsValid: the records of every status of both probes, with and
// without enrichment, are valid, in UTC, and carry what the schema's
// conditions say (an error exactly when the status is not ok, the reply
// of their own probe only).
func TestRecordsValid(t *testing.T) {
	docs, recs := records(t)
	for _, d := range docs {
		schematest.Validate(t, d.Def, d.JSON)
	}
	assert.Equal(t, time.UTC, recs["monitor ok"].Time.Location())
	assert.Equal(t, 4, *recs["monitor server_error"].Monitor.ErrorCode, "INFO_ERR_NODATA: monlist disabled")
	assert.Nil(t, recs["monitor ok"].Monitor.ErrorCode)
	assert.Equal(t, int(mode6.CErrBadAssoc), *recs["version server_error"].Variables.ErrorCode)
	assert.Equal(t, 0, *recs["version server_error CERR_UNSPEC"].Variables.ErrorCode, "0 is an error code too")
	assert.Nil(t, recs["version ok"].Variables.ErrorCode)
	assert.Contains(t, string(docs[0].JSON), `"time":"2026-03-24T00:02:03.456789Z"`)
	for name, rec := range recs {
		b := schematest.Marshal(t, rec)
		var back report.JSONRecord
		require.NoError(t, json.Unmarshal(b, &back), name)
		var want, got any
		require.NoError(t, json.Unmarshal(b, &want))
		require.NoError(t, json.Unmarshal(schematest.Marshal(t, back), &got))
		assert.Equal(t, want, got, "%s: decodes back into JSONRecord", name)
	}
}

// TestScanStatsValid: a statistics file of both probes, and one of a scan
// that ran neither, are valid.
func TestScanStatsValid(t *testing.T) {
	st := scanStats(t)
	require.NotEmpty(t, st.Monitor.Report.Countries)
	require.NotEmpty(t, st.Version.Report.Versions)
	schematest.Validate(t, "scan_stats", schematest.Marshal(t, st))
	var buf bytes.Buffer
	require.NoError(t, st.Monitor.Report.WriteJSON(&buf))
	schematest.Validate(t, "summary", buf.Bytes())
	schematest.Validate(t, "summary", schematest.Marshal(t, (&report.Stats{}).Summary()))
}

// TestSchemaRejects: the schema is closed: the old ntpctl names, a field
// too many or too few, a status of another spelling, a time outside UTC
// and a reply of the other probe all fail.
func TestSchemaRejects(t *testing.T) {
	_, recs := records(t)
	base := schematest.Marshal(t, recs["version ok"])
	mon := schematest.Marshal(t, recs["monitor ok"])
	check := schematest.Marshal(t, report.JSONCheck{Time: schemaTime.UTC(), IP: recs["monitor ok"].IP, Port: 123,
		Verdict: report.VerdictNotAmplifier, Remediation: []string{}, Monitor: recs["monitor no_answer"],
		Version: recs["version no_answer"]})
	for _, c := range []struct {
		name, def string
		doc       []byte
		edit      func(m map[string]any)
	}{
		{"rtt_ns", "record", base, func(m map[string]any) { m["rtt_ns"] = 1500000; delete(m, "rtt_ms") }},
		{"extra field", "record", base, func(m map[string]any) { m["outcome"] = "answered" }},
		{"missing field", "record", base, func(m map[string]any) { delete(m, "attempts") }},
		{"status with a hyphen", "record", base, func(m map[string]any) { m["status"] = "no-answer" }},
		{"unknown status", "record", base, func(m map[string]any) { m["status"] = "amplifier" }},
		{"time outside UTC", "record", base, func(m map[string]any) { m["time"] = "2026-03-24T01:02:03+01:00" }},
		{"not a time", "record", base, func(m map[string]any) { m["time"] = "yesterday" }},
		{"not an address", "record", base, func(m map[string]any) { m["ip"] = "ntp.example.net" }},
		{"an address with a port", "record", base, func(m map[string]any) { m["ip"] = "192.0.2.1:123" }},
		{"status word in hex", "record", base, func(m map[string]any) {
			m["variables"].(map[string]any)["status_word"] = "0615"
		}},
		{"associd", "record", base, func(m map[string]any) {
			v := m["variables"].(map[string]any)
			v["associd"] = v["assoc_id"]
			delete(v, "assoc_id")
		}},
		{"quoted false", "record", base, func(m map[string]any) {
			m["variables"].(map[string]any)["vars"].([]any)[0].(map[string]any)["quoted"] = false
		}},
		{"no error for a failure", "record", base, func(m map[string]any) { m["status"] = "partial" }},
		{"an error for ok", "record", base, func(m map[string]any) { m["error"] = "none" }},
		{"a monitor in a version record", "record", base, func(m map[string]any) {
			var mm map[string]any
			require.NoError(t, json.Unmarshal(mon, &mm))
			m["monitor"] = mm["monitor"]
		}},
		{"rv as monlist", "ntpctl_monlist", base, func(map[string]any) {}},
		{"remote", "record", mon, func(m map[string]any) {
			e := m["monitor"].(map[string]any)["entries"].([]any)[0].(map[string]any)
			e["remote"] = e["addr"]
			delete(e, "addr")
		}},
		{"lstint", "record", mon, func(m map[string]any) {
			e := m["monitor"].(map[string]any)["entries"].([]any)[0].(map[string]any)
			e["lstint"] = e["last_int"]
			delete(e, "last_int")
		}},
		{"missing as base64", "record", mon, func(m map[string]any) { m["monitor"].(map[string]any)["missing"] = "AwY=" }},
		{"verdict with hyphens", "ntpctl_check", check, func(m map[string]any) { m["verdict"] = "not-amplifier" }},
		{"target", "ntpctl_check", check, func(m map[string]any) { m["target"] = "192.0.2.20:123" }},
		{"remediation null", "ntpctl_check", check, func(m map[string]any) { m["remediation"] = nil }},
		{"rv record as monlist", "ntpctl_check", check, func(m map[string]any) { m["monitor"] = m["version"] }},
		{"kind with a hyphen", "ntpctl_lab", []byte(labDoc), func(m map[string]any) {
			m["hosts"].([]any)[1].(map[string]any)["kind"] = "monlist-disabled"
		}},
		{"addr", "ntpctl_lab", []byte(labDoc), func(m map[string]any) {
			h := m["hosts"].([]any)[0].(map[string]any)
			h["addr"] = h["ip"]
			delete(h, "ip")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			require.NoError(t, json.Unmarshal(c.doc, &m))
			if c.def != "ntpctl_monlist" {
				schematest.Validate(t, c.def, c.doc) // valid as it is
			}
			c.edit(m)
			b := schematest.Marshal(t, m)
			assert.Error(t, schematest.Check(t, c.def, b), "%s", b)
		})
	}
}

// TestSchemaMatchesGoTypes: each Go type of the vocabulary has exactly the
// fields of its $defs entry, required unless omitempty, so that a field
// added or renamed on one side fails even when no document carries it.
func TestSchemaMatchesGoTypes(t *testing.T) {
	for def, v := range map[string]any{
		"record": report.JSONRecord{}, "monitor": report.JSONMonitor{}, "monitor_counts": report.JSONMonitorCounts{},
		"entry": report.JSONEntry{}, "variables": report.JSONVars{}, "variables_counts": report.JSONVarsCounts{},
		"span": report.JSONSpan{}, "parse": report.JSONParse{}, "var": report.JSONVar{}, "enrichment": report.JSONEnrich{},
		"scan_stats": report.JSONScanStats{}, "probe_stats": report.JSONProbeStats{},
		"enrichment_stats": report.JSONEnrichStats{}, "prober_stats": ntpctl.Stats{},
		"status_counts": ntpctl.StatusCounts{}, "summary": report.Summary{}, "tally": report.Count{},
		"distribution": report.Distribution{}, "bucket": report.Bucket{}, "ntpctl_check": report.JSONCheck{},
		"ntpctl_peers": report.JSONPeers{}, "ntpctl_mrulist": report.JSONMRUList{}, "mru_entry": report.JSONMRUEntry{},
		"mru": report.JSONMRU{}, "server": report.JSONServer{},
		"store_count": store.Count{}, "store_run_stats": store.RunStats{},
		"store_point": store.Point{},
	} {
		schematest.CheckType(t, def, v)
	}
}

// TestSchemaEnums: the schema's enumerations are the Go constants.
func TestSchemaEnums(t *testing.T) {
	enum := func(def string) []string {
		var out []string
		for _, v := range schematest.Def(t, def)["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	var statuses []string
	for _, s := range ntpctl.Statuses() {
		statuses = append(statuses, s.String())
	}
	assert.Equal(t, statuses, enum("status"))
	assert.ElementsMatch(t, []report.Type{report.ScanNTP, report.Scan6NTP, report.ScanNTPMonitor, report.Scan6NTPMonitor,
		report.ScanNTPMRU, report.Scan6NTPMRU, report.ScanNTPAccessible, report.Scan6NTPAccessible},
		slices.Collect(func(yield func(report.Type) bool) {
			for _, s := range enum("report_type") {
				yield(report.Type(s))
			}
		}))
	assert.Equal(t, []string{report.VerdictMonlistAmplifier, report.VerdictMode6Amplifier, report.VerdictNotAmplifier, report.VerdictNoService},
		enum("verdict"))
	assert.Equal(t, []string{report.VerifiedOpen, report.VerifiedChanged, report.VerifiedFixed, report.VerifiedUnverified},
		enum("verified"))
}

// TestSchemaCoverage: the documents of these tests exercise every $defs
// entry: none is dead text that nothing checks.
func TestSchemaCoverage(t *testing.T) {
	got := schematest.Exercised(t, allDocs(t))
	for _, d := range schematest.Defs(t) {
		assert.True(t, got[d], "$defs/%s is exercised by no test document", d)
	}
}
