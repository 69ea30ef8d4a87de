package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

// The JSON vocabulary of ntpctl: the objects below are what every program
// of the project writes as JSON (the scanner's JSON lines and statistics
// file, and every `ntpctl --json`), with snake_case names throughout, one
// name per thing (a status is "no_answer" wherever it appears, an RTT is
// rtt_ms, a status word a number, a time UTC in RFC 3339). The JSON Schema
// in the repository (report/schema/ntpctl.schema.json, also Schema)
// documents them, and the tests check every output against it.

//go:embed schema/ntpctl.schema.json
var schemaJSON []byte

// Schema returns the JSON Schema (draft 2020-12) of the JSON vocabulary,
// report/schema/ntpctl.schema.json: its $defs describe each object
// ("record" a JSONRecord, "scan_stats" a JSONScanStats, "ntpctl_check" a
// JSONCheck, "ntpctl_monlist", "ntpctl_rv" and "ntpctl_lab" the other
// outputs of `ntpctl --json`, and the parts they are made of), with the
// required fields and no others. It returns a new copy on every call.
func Schema() []byte { return bytes.Clone(schemaJSON) }

// Value is the set of probe values the reports are made of: the Mode 7
// monitor list of ntpctl.MonList, the Mode 6 reply of ntpctl.ReadVar, the
// MRU list of ntpctl.MRUList and the Mode 4 reply of ntpctl.Client.
type Value interface {
	mode7.Reply | mode6.Reply | ntpctl.MRUResult | ntpctl.TimePacket
}

// JSONWriter writes one JSON object per line and per target (JSON lines),
// with the whole result: more than the CSV reports carry, for pipelines
// that want every monitor entry or variable. A JSONWriter is not safe for
// concurrent use.
type JSONWriter struct {
	w        io.Writer
	buf      bytes.Buffer
	enc      *json.Encoder
	degraded int
}

// NewJSONWriter returns a JSONWriter to w. Each object is written to w in
// one Write call, with the characters a terminal would act on escaped
// (EscapeJSON).
func NewJSONWriter(w io.Writer) *JSONWriter {
	j := &JSONWriter{w: w}
	j.enc = json.NewEncoder(&j.buf)
	j.enc.SetEscapeHTML(false)
	return j
}

// Write writes rec as one line. A record that cannot be encoded as it is
// (a value JSON has no form for, such as a NaN from a hostile file) is
// that record's problem, not the file's: it is written without the bad
// values (non-finite numbers become 0 or are left out; failing that, the
// reply and enrichment are left out), its error says so, and Degraded
// counts it. Write's error is the writer's.
func (j *JSONWriter) Write(rec *JSONRecord) error {
	j.buf.Reset()
	if err := j.enc.Encode(rec); err != nil {
		j.degraded++
		r := *rec
		r.Error = strings.TrimPrefix(r.Error+"; ", "; ") + "report: could not encode the record in full: " + err.Error()
		r.Amplification, r.RTTms = finiteOr0(r.Amplification), finiteOr0(r.RTTms)
		if r.Enrichment.Latitude != nil && !(finite(*r.Enrichment.Latitude) && finite(*r.Enrichment.Longitude)) {
			r.Enrichment.Latitude, r.Enrichment.Longitude = nil, nil
		}
		j.buf.Reset()
		if j.enc.Encode(&r) != nil {
			r.Monitor, r.Variables, r.Enrichment = nil, nil, JSONEnrich{}
			j.buf.Reset()
			if err := j.enc.Encode(&r); err != nil {
				return err
			}
		}
	}
	_, err := j.w.Write(EscapeJSON(j.buf.Bytes()))
	return err
}

// Degraded returns how many records were written without values that
// could not be encoded.
func (j *JSONWriter) Degraded() int { return j.degraded }

func finiteOr0(f float64) float64 {
	if finite(f) {
		return f
	}
	return 0
}

// JSONRecord is the object of one probed target: a line of the scanner's
// JSON lines, and the result of `ntpctl monlist --json` and `ntpctl rv
// --json`. It is exported so that consumers can decode the lines back.
type JSONRecord struct {
	// Report is the report type of the target: scan_ntp,
	// scan_ntpmonitor, scan_ntpmru or scan_ntpaccessible (scan6_… for
	// IPv6).
	Report Type `json:"report"`
	// IP is the target's address, an IPv4-mapped one unmapped.
	IP netip.Addr `json:"ip"`
	// Port is the target's UDP port.
	Port uint16 `json:"port"`
	// Time is when the first request was sent (the time of the query),
	// UTC, RFC 3339.
	Time time.Time `json:"time"`
	// Status is the outcome: ok, partial, no_answer, … (ntpctl.Status).
	Status ntpctl.Status `json:"status"`
	// Error explains a status other than ok; empty otherwise.
	Error string `json:"error,omitempty"`
	// Attempts counts the requests sent.
	Attempts int `json:"attempts"`
	// RTTms is the round-trip time of the first reply datagram in
	// milliseconds (to the microsecond); 0 without a reply.
	RTTms float64 `json:"rtt_ms"`
	// Packets counts the reply datagrams (ntpctl.Outcome.Packets).
	Packets int `json:"packets"`
	// Bytes is the sum of their UDP payloads (the CSV's response_size).
	Bytes int `json:"bytes"`
	// RequestBytes is the UDP payload size of one request.
	RequestBytes int `json:"request_bytes"`
	// Amplification is Bytes ÷ RequestBytes, unrounded; 0 when unknown.
	Amplification float64 `json:"amplification"`
	// Reportable reports that the result makes a CSV row (Reportable).
	Reportable bool `json:"reportable"`
	// Monitor is the monlist reply, for an NTP Monitor result whose
	// target sent something.
	Monitor *JSONMonitor `json:"monitor,omitempty"`
	// Variables is the READVAR reply, for an NTP Version result whose
	// target sent something.
	Variables *JSONVars `json:"variables,omitempty"`
	// MRU is the MRU list walk, for an NTP MRU result whose target sent
	// something (the clients' addresses only when asked for: JSONMRU).
	MRU *JSONMRU `json:"mru,omitempty"`
	// Server is the Mode 4 reply, for an Accessible NTP result whose
	// target sent one.
	Server *JSONServer `json:"server,omitempty"`
	// Enrichment is what enrichment found about IP.
	Enrichment JSONEnrich `json:"enrichment"`
}

// JSONMonitor is the monlist reply of a JSONRecord (see mode7.Reply).
type JSONMonitor struct {
	// Counts are the reassembler's packet counts.
	Counts JSONMonitorCounts `json:"counts"`
	// Impl is the implementation number of the reply.
	Impl uint8 `json:"impl"`
	// Code is the request code of the reply.
	Code uint8 `json:"code"`
	// Version is the NTP version of the reply.
	Version uint8 `json:"version"`
	// ItemSize is the size of one monitor entry on the wire.
	ItemSize int `json:"item_size"`
	// LastSeq is the sequence number of the last packet, -1 if unknown.
	LastSeq int `json:"last_seq"`
	// Missing lists the sequence numbers not received.
	Missing []int `json:"missing,omitempty"`
	// Complete reports that every packet arrived and no error reply did.
	Complete bool `json:"complete"`
	// ErrorCode is the error code of an error reply (mode7.InfoErr: 4,
	// INFO_ERR_NODATA, is "monlist disabled"); nil without one.
	ErrorCode *int `json:"error_code,omitempty"`
	// Entries are all the monitor entries received, in sequence order.
	Entries []JSONEntry `json:"entries"`
}

// JSONMonitorCounts are mode7.ReassemblyStats.
type JSONMonitorCounts struct {
	Packets     int `json:"packets"`     // the reply's datagrams, decodable or not
	Bytes       int `json:"bytes"`       // their UDP payload octets, as the reassembler saw them
	Accepted    int `json:"accepted"`    // distinct packets kept
	Duplicates  int `json:"duplicates"`  // repeating a sequence number already kept
	Malformed   int `json:"malformed"`   // not decodable, or a bad item size
	Mismatched  int `json:"mismatched"`  // for another implementation or request code: not in packets
	Conflicting int `json:"conflicting"` // contradicting the reply
	OverCap     int `json:"over_cap"`    // dropped by a cap on octets or entries
}

// JSONEntry is one monitor-list entry (see mode7.MonitorEntry).
type JSONEntry struct {
	// Addr is the client's address.
	Addr netip.Addr `json:"addr"`
	// LocalAddr is the server's address the client's packets arrived
	// on, when the entry layout carries it ("" otherwise).
	LocalAddr netip.Addr `json:"local_addr"`
	// Port is the client's UDP source port.
	Port uint16 `json:"port"`
	// Mode is the NTP mode of the client's last packet.
	Mode uint8 `json:"mode"`
	// Version is the NTP version of the client's last packet.
	Version uint8 `json:"version"`
	// Count is the number of packets received from the client.
	Count uint32 `json:"count"`
	// AvgInt is avg_int (ntpdc's avgint), in seconds.
	AvgInt uint32 `json:"avg_int"`
	// LastInt is last_int (ntpdc's lstint), seconds since the last
	// packet.
	LastInt uint32 `json:"last_int"`
	// FirstInt is firsttime, seconds since the first packet.
	FirstInt uint32 `json:"first_int"`
	// Restrict is restr, the restriction flags (ntpdc's rstr).
	Restrict uint32 `json:"restrict"`
	// Flags says how the packets arrived (unicast, multicast, …).
	Flags uint32 `json:"flags"`
}

// JSONVars is the READVAR reply of a JSONRecord (see mode6.Reply).
type JSONVars struct {
	// Counts are the reassembler's fragment counts.
	Counts JSONVarsCounts `json:"counts"`
	// Version is the NTP version of the reply.
	Version uint8 `json:"version"`
	// Leap is the leap indicator of the reply.
	Leap uint8 `json:"leap"`
	// AssocID is the association id of the reply.
	AssocID uint16 `json:"assoc_id"`
	// StatusWord is the status word of the reply.
	StatusWord uint16 `json:"status_word"`
	// StatusText is the status word as ntpq decodes it ("leap_none,
	// sync_ntp, 15 events, clock_sync" for the system).
	StatusText string `json:"status_text"`
	// Complete reports that every fragment arrived and no error reply
	// did.
	Complete bool `json:"complete"`
	// ErrorCode is the error code of an error reply (mode6.ServerError,
	// such as 4, CERR_BADASSOC); nil without one. 0, CERR_UNSPEC, is an
	// error code too.
	ErrorCode *int `json:"error_code,omitempty"`
	// Holes lists the missing ranges of the reply data.
	Holes []JSONSpan `json:"holes,omitempty"`
	// Vars are all the variables, in wire order, duplicates kept.
	Vars []JSONVar `json:"vars"`
	// Data is the reply data as received (base64 in JSON), up to the
	// first hole: the exact text, where Vars may have lost octets that
	// parsing dropped or that are not UTF-8 (JSON strings are).
	Data []byte `json:"data,omitempty"`
	// Parse reports what parsing the variables had to repair.
	Parse JSONParse `json:"parse"`
}

// JSONVarsCounts are mode6.ReassemblyStats.
type JSONVarsCounts struct {
	Packets     int `json:"packets"`     // the reply's datagrams, decodable or not
	Bytes       int `json:"bytes"`       // their UDP payload octets, as the reassembler saw them
	Fragments   int `json:"fragments"`   // fragments kept
	Duplicates  int `json:"duplicates"`  // at an offset already held
	Overlaps    int `json:"overlaps"`    // overlapping one held
	Malformed   int `json:"malformed"`   // not decodable
	Mismatched  int `json:"mismatched"`  // of another sequence number or opcode: not in packets
	Conflicting int `json:"conflicting"` // contradicting the reply
	OverCap     int `json:"over_cap"`    // beyond the buffer
}

// JSONSpan is a range of octets [start, end) of the reply data.
type JSONSpan struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// JSONParse is mode6.ParseStats: what parsing the variable text repaired.
type JSONParse struct {
	Dropped      int `json:"dropped"`      // octets removed: control characters, binary junk
	Repaired     int `json:"repaired"`     // items that ran into the next one without a comma
	Unterminated int `json:"unterminated"` // quoted values without a closing quote
	Skipped      int `json:"skipped"`      // items without a name
}

// JSONVar is one variable as the server sent it (see mode6.Var).
type JSONVar struct {
	// Name is the variable's name.
	Name string `json:"name"`
	// Value is the value as the server printed it.
	Value string `json:"value"`
	// Quoted reports a quoted string on the wire.
	Quoted bool `json:"quoted,omitempty"`
	// Bare reports a name without "=" and value.
	Bare bool `json:"bare,omitempty"`
}

// JSONEnrich is what enrichment found about the address (see
// enrich.Result); empty fields were not found.
type JSONEnrich struct {
	// Names are the reverse DNS names.
	Names []string `json:"names,omitempty"`
	// ASN is the number of the originating AS.
	ASN uint32 `json:"asn,omitempty"`
	// ASName is its name.
	ASName string `json:"as_name,omitempty"`
	// ASPrefix is the announced prefix that covers the address.
	ASPrefix string `json:"as_prefix,omitempty"`
	// ASCountry is the country of the AS registration.
	ASCountry string `json:"as_country,omitempty"`
	// ASRegistry is the regional Internet registry of the AS.
	ASRegistry string `json:"as_registry,omitempty"`
	// Country is the ISO 3166-1 alpha-2 code of the address's location.
	Country string `json:"country,omitempty"`
	// Region is its region.
	Region string `json:"region,omitempty"`
	// City is its city.
	City string `json:"city,omitempty"`
	// Latitude is its latitude, when known (and a finite number).
	Latitude *float64 `json:"latitude,omitempty"`
	// Longitude is its longitude, when known (and a finite number).
	Longitude *float64 `json:"longitude,omitempty"`
	// AbuseEmail is the network's abuse contact address.
	AbuseEmail string `json:"abuse_email,omitempty"`
	// AbuseHandle is the abuse contact's handle.
	AbuseHandle string `json:"abuse_handle,omitempty"`
	// AbuseSource says where the abuse contact came from.
	AbuseSource string `json:"abuse_source,omitempty"`
	// NAICS is the owner's NAICS code.
	NAICS int `json:"naics,omitempty"`
	// Sector is the owner's sector.
	Sector string `json:"sector,omitempty"`
}

// Reportable reports whether a result belongs in its report, as a row:
// the server answered (status ok or partial) with something the report
// lists. For monlist that is (part of) the monitor list, at least one
// reply packet kept; for READVAR at least one system variable (a peer's
// variables, association not 0, are not the server's); for the MRU list
// at least one client (MRUReportable); for Mode 3 a Mode 4 reply
// (AccessibleReportable). Error replies such as INFO_ERR_NODATA (monlist
// disabled), kiss-o'-death refusals, silence and undecodable answers are
// not findings.
func Reportable[R Value](res *ntpctl.Result[R]) bool {
	if res.Status != ntpctl.StatusOK && res.Status != ntpctl.StatusPartial {
		return false
	}
	switch v := any(&res.Value).(type) {
	case *mode7.Reply:
		return v.Accepted > 0
	case *mode6.Reply:
		return len(v.Vars) > 0 && v.AssocID == 0
	case *ntpctl.MRUResult:
		return MRUReportable(any(res).(*ntpctl.Result[ntpctl.MRUResult]))
	case *ntpctl.TimePacket:
		return AccessibleReportable(any(res).(*ntpctl.Result[ntpctl.TimePacket]))
	}
	return false
}

// TypeOf returns the report type of a result of probe value R for an
// address: scan_ntpmonitor, scan_ntp, scan_ntpmru or scan_ntpaccessible,
// scan6_… for IPv6.
func TypeOf[R Value](addr netip.Addr) Type {
	var v R
	v6 := addr.Unmap().Is6()
	switch any(v).(type) {
	case mode7.Reply:
		if v6 {
			return Scan6NTPMonitor
		}
		return ScanNTPMonitor
	case ntpctl.MRUResult:
		return MRUTypeOf(addr)
	case ntpctl.TimePacket:
		return AccessibleTypeOf(addr)
	}
	if v6 {
		return Scan6NTP
	}
	return ScanNTP
}

// NewRecord returns the JSON record of a result and what enrichment found
// about its address.
func NewRecord[R Value](res *ntpctl.Result[R], e enrich.Result) JSONRecord {
	addr := res.Target.Addr().Unmap()
	rec := JSONRecord{
		Report: TypeOf[R](addr), IP: addr, Port: res.Target.Port(), Status: res.Status,
		Time: res.Time.UTC(), Attempts: res.Attempts, RTTms: float64(res.RTT.Microseconds()) / 1000,
		Packets: res.Packets, Bytes: res.Bytes, RequestBytes: res.RequestBytes,
		Amplification: res.Amplification(), Reportable: Reportable(res),
		Enrichment: newJSONEnrich(e),
	}
	if res.Err != nil {
		rec.Error = res.Err.Error()
	}
	switch v := any(&res.Value).(type) {
	case *mode7.Reply:
		// Without a reply the Value is the zero Reply, whose LastSeq 0
		// and empty list would read as a reply with no entries.
		if res.Packets > 0 || v.Packets > 0 {
			rec.Monitor = newJSONMonitor(v)
			rec.Monitor.ErrorCode = errorCode[mode7.InfoErr](v.Err, res.Err)
		}
	case *mode6.Reply:
		if res.Packets > 0 || v.Packets > 0 {
			rec.Variables = newJSONVars(v)
			rec.Variables.ErrorCode = errorCode[mode6.ServerError](v.Err, res.Err)
		}
	case *ntpctl.MRUResult:
		if res.Packets > 0 || v.Nonce {
			rec.MRU = newJSONMRU(v, res.Err)
		}
	case *ntpctl.TimePacket:
		if res.Packets > 0 && v.Mode != 0 {
			rec.Server = newJSONServer(v, &res.Outcome)
		}
	}
	return rec
}

// errorCode returns the protocol error code E of the first of errs that
// has one, or nil.
func errorCode[E mode7.InfoErr | mode6.ServerError](errs ...error) *int {
	for _, err := range errs {
		var e E
		if errors.As(err, &e) {
			c := int(e)
			return &c
		}
	}
	return nil
}

func newJSONMonitor(v *mode7.Reply) *JSONMonitor {
	s := &v.ReassemblyStats
	m := &JSONMonitor{
		Counts: JSONMonitorCounts{Packets: s.Packets, Bytes: s.Bytes, Accepted: s.Accepted, Duplicates: s.Duplicates,
			Malformed: s.Malformed, Mismatched: s.Mismatched, Conflicting: s.Conflicting, OverCap: s.OverCap},
		Impl: uint8(v.Impl), Code: uint8(v.Code), Version: v.Version, ItemSize: v.ItemSize, LastSeq: v.LastSeq,
		Complete: v.Complete, Entries: make([]JSONEntry, len(v.Entries)),
	}
	for _, q := range v.Missing {
		m.Missing = append(m.Missing, int(q))
	}
	for i, en := range v.Entries {
		m.Entries[i] = JSONEntry{
			Addr: en.Addr, LocalAddr: en.LocalAddr, Port: en.Port, Mode: en.Mode, Version: en.Version,
			Count: en.Count, AvgInt: en.AvgInt, LastInt: en.LastInt, FirstInt: en.FirstInt,
			Restrict: en.Restrict, Flags: en.Flags,
		}
	}
	return m
}

func newJSONVars(v *mode6.Reply) *JSONVars {
	s := &v.ReassemblyStats
	jv := &JSONVars{
		Counts: JSONVarsCounts{Packets: s.Packets, Bytes: s.Bytes, Fragments: s.Fragments, Duplicates: s.Duplicates,
			Overlaps: s.Overlaps, Malformed: s.Malformed, Mismatched: s.Mismatched, Conflicting: s.Conflicting,
			OverCap: s.OverCap},
		Version: v.Version, Leap: v.Leap, AssocID: v.AssocID, StatusWord: v.Status,
		StatusText: StatusText(v.AssocID, v.Status), Complete: v.Complete, Data: v.Data,
		Parse: JSONParse{Dropped: v.Parse.Dropped, Repaired: v.Parse.Repaired, Unterminated: v.Parse.Unterminated,
			Skipped: v.Parse.Skipped},
		Vars: make([]JSONVar, len(v.Vars)),
	}
	for _, h := range v.Holes {
		jv.Holes = append(jv.Holes, JSONSpan{h.Start, h.End})
	}
	for i, x := range v.Vars {
		jv.Vars[i] = JSONVar{Name: x.Name, Value: x.Value, Quoted: x.Quoted, Bare: x.Bare}
	}
	return jv
}

// StatusText decodes a Mode 6 status word as ntpq names it: the system
// status for association 0, a peer status otherwise.
func StatusText(assoc, word uint16) string {
	if assoc == 0 {
		return mode6.SystemStatusOf(word).String()
	}
	return mode6.PeerStatusOf(word).String()
}

func newJSONEnrich(e enrich.Result) JSONEnrich {
	en := JSONEnrich{
		Names: e.Names, ASN: e.ASN.Number, ASName: e.ASN.Name, ASCountry: e.ASN.Country, ASRegistry: e.ASN.Registry,
		Country: e.Geo.Country, Region: e.Geo.Region, City: e.Geo.City,
		AbuseEmail: e.Abuse.Email, AbuseHandle: e.Abuse.Handle, AbuseSource: e.Abuse.Source,
		NAICS: e.NAICS, Sector: e.Sector,
	}
	if e.ASN.Prefix.IsValid() {
		en.ASPrefix = e.ASN.Prefix.String()
	}
	if e.Geo.HasCoordinates && finite(e.Geo.Latitude) && finite(e.Geo.Longitude) {
		lat, lon := e.Geo.Latitude, e.Geo.Longitude
		en.Latitude, en.Longitude = &lat, &lon
	}
	return en
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// JSONScanStats is the object of a scan's statistics file
// (…-stats.json): when and what was scanned, and per probe the report's
// summary and the prober's counters.
type JSONScanStats struct {
	// Started and Finished bound the scan, UTC.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Targets is the number of targets of the shard.
	Targets uint64 `json:"targets"`
	// Blocked counts the target addresses the blocklists (the IANA
	// special-purpose ranges, loopback, deny and allow lists) took out
	// before the scan: never sent to, not in Targets.
	Blocked uint64 `json:"blocked"`
	// TargetsEstimated reports that Targets is the shard's share of the
	// target space, not a count.
	TargetsEstimated bool `json:"targets_estimated,omitempty"`
	// Interrupted reports a scan cut short (Ctrl-C).
	Interrupted bool `json:"interrupted,omitempty"`
	// Space is the target space the scan covered completely, as ranges
	// ("192.0.2.0/24", "198.51.100.7-198.51.100.9"), blocked addresses
	// taken out: every address in it was sent the probes. It is empty for
	// a shard of a scan, or a scan limited to some of its targets, which
	// covered only part of their ranges. The report store calls a finding
	// fixed only where a complete scan covered it.
	Space []string `json:"space,omitempty"`
	// Scanner names the program that scanned and its version.
	Scanner string `json:"scanner,omitempty"`
	// Failed is the error that stopped the scan (a file could not be
	// written); the files and these statistics then hold the results up
	// to the last complete flush.
	Failed string `json:"failed,omitempty"`
	// Seed is the permutation's seed.
	Seed uint64 `json:"seed"`
	// Shard is "i/n".
	Shard string `json:"shard"`
	// Sent is the requests the probes sent together, retries included.
	Sent uint64 `json:"sent,omitempty"`
	// SendRate is the probes' requests per second together over the
	// scan's sending time: the sum of their Prober.SendRate (they send
	// the same targets at once, sharing one rate limit).
	SendRate float64 `json:"send_rate,omitempty"`
	// Monitor and Version are the statistics of each probe that ran.
	Monitor *JSONProbeStats `json:"monitor,omitempty"`
	Version *JSONProbeStats `json:"version,omitempty"`
	// MRU is the MRU list probe's, which asked the servers that answered
	// READVAR; Accessible the Mode 3 probe's.
	MRU        *JSONProbeStats `json:"mru,omitempty"`
	Accessible *JSONProbeStats `json:"accessible,omitempty"`
	// Discover reports that the control queries went only to the targets
	// that answered the Mode 3 request (their probes' targets count
	// those).
	Discover bool `json:"discover,omitempty"`
	// Enrichment counts enrichment failures.
	Enrichment JSONEnrichStats `json:"enrichment"`
}

// JSONProbeStats are one probe's statistics in a JSONScanStats.
type JSONProbeStats struct {
	// Report summarises the report's rows and the results' statuses.
	Report Summary `json:"report"`
	// Prober is the prober's counters.
	Prober ntpctl.Stats `json:"prober"`
	// Replied counts the targets that sent any datagram back.
	Replied int `json:"replied"`
}

// JSONEnrichStats counts enrichment failures.
type JSONEnrichStats struct {
	// Errors counts lookups that failed (not-found excluded).
	Errors uint64 `json:"errors"`
}

// Verdicts of a JSONCheck.
const (
	// VerdictMonlistAmplifier: the reply to monlist is larger than the
	// request.
	VerdictMonlistAmplifier = "monlist_amplifier"
	// VerdictMode6Amplifier: no monlist amplification, but the reply to
	// READVAR is larger than the request.
	VerdictMode6Amplifier = "mode6_amplifier"
	// VerdictNotAmplifier: no reply is larger than the request.
	VerdictNotAmplifier = "not_amplifier"
	// VerdictNoService: neither query reached an NTP service: ICMP said
	// the port is closed, the host unreachable or the traffic prohibited.
	VerdictNoService = "no_ntp_service"
)

// JSONCheck is the object of `ntpctl check --json`: both queries of one
// host, what they amount to and how to fix it.
type JSONCheck struct {
	// Time is when the first of the two queries was sent, UTC.
	Time time.Time `json:"time"`
	// IP is the host checked.
	IP netip.Addr `json:"ip"`
	// Port is its UDP port.
	Port uint16 `json:"port"`
	// Verdict is what the replies amount to, after their sizes
	// (decodable or not, error replies aside): VerdictMonlistAmplifier,
	// VerdictMode6Amplifier, VerdictNotAmplifier or VerdictNoService.
	Verdict string `json:"verdict"`
	// Amplification is the factor the verdict rests on: Monitor's for
	// monlist_amplifier, Version's for mode6_amplifier, 0 otherwise.
	Amplification float64 `json:"amplification"`
	// Remediation is what to change, in order; empty, not nil, when there
	// is nothing to fix.
	Remediation []string `json:"remediation"`
	// Monitor is the record of the monlist query (as `ntpctl monlist
	// --json` prints it).
	Monitor JSONRecord `json:"monitor"`
	// Version is the record of the READVAR query of the system variables
	// (as `ntpctl rv --json` prints it).
	Version JSONRecord `json:"version"`
}

// The states of a row `ntpctl verify` asked again about (JSONVerifyRow).
const (
	// VerifiedOpen: the host still answers as reported (monlist: the
	// monitor list came back; version: READVAR answered, by the daemon
	// version the report names, if it names one).
	VerifiedOpen = "open"
	// VerifiedChanged: the host still answers, larger than the request,
	// but not as reported: monlist in part or malformed, READVAR from
	// another daemon version. Not fixed.
	VerifiedChanged = "changed"
	// VerifiedFixed: the query is no longer answered with more than an
	// error: an error reply (monlist disabled), no answer, or ICMP saying
	// no service.
	VerifiedFixed = "fixed"
	// VerifiedUnverified: the row could not be checked: its address is
	// refused, the request could not be sent, or forged replies were
	// suspected.
	VerifiedUnverified = "unverified"
)

// JSONVerify is the object of `ntpctl verify --json`: every row of the
// reports given, asked again with the report's query.
type JSONVerify struct {
	// Time is when the first query was sent, UTC (zero when none was).
	Time time.Time `json:"time"`
	// Files are the reports read, in the order given.
	Files []JSONVerifyFile `json:"files"`
	// Counts counts the rows by state, and the rows skipped.
	Counts JSONVerifyCounts `json:"counts"`
	// Rows are the rows, file by file in file order.
	Rows []JSONVerifyRow `json:"rows"`
}

// JSONVerifyFile is one report `ntpctl verify` read.
type JSONVerifyFile struct {
	// File is the path as given.
	File string `json:"file"`
	// Report is the report type the rows were taken for: scan_ntp or
	// scan_ntpmonitor (scan6_… for an IPv6 file name).
	Report Type `json:"report"`
	// Rows counts the rows read; Skipped the malformed rows left out.
	Rows    int `json:"rows"`
	Skipped int `json:"skipped"`
}

// JSONVerifyCounts counts rows by state.
type JSONVerifyCounts struct {
	Open       int `json:"open"`
	Changed    int `json:"changed"`
	Fixed      int `json:"fixed"`
	Unverified int `json:"unverified"`
	// Skipped counts the malformed rows no state was given to.
	Skipped int `json:"skipped"`
}

// JSONVerifyRow is one row of a report and what asking again found.
type JSONVerifyRow struct {
	// File and Line locate the row (the header is line 1).
	File string `json:"file"`
	Line int    `json:"line"`
	// Report is the row's report type, after its address family.
	Report Type `json:"report"`
	// IP and Port are the row's, the target asked again.
	IP   netip.Addr `json:"ip"`
	Port uint16     `json:"port"`
	// Reported is the row's timestamp, UTC; absent when the row has none.
	Reported *time.Time `json:"reported,omitempty"`
	// Verified is VerifiedOpen, VerifiedChanged, VerifiedFixed or
	// VerifiedUnverified.
	Verified string `json:"verified"`
	// Detail says what came back, in words.
	Detail string `json:"detail"`
	// Record is today's query, as the scanner's JSON lines have it; null
	// when the row was not asked (a refused address, or one whose request
	// could not be sent).
	Record *JSONRecord `json:"record"`
}

// JSONError is what `ntpctl COMMAND --json` prints when the command ends
// in an error before it has anything else to print (bad usage, a host
// that cannot be resolved, a file that cannot be read), and, as one of
// its JSON lines, for each host `ntpctl check --json` could not check.
type JSONError struct {
	// Command is the command that failed, such as "check".
	Command string `json:"command"`
	// Host is the host argument the error is about, when it is about one.
	Host string `json:"host,omitempty"`
	// Error says what went wrong, as stderr says it.
	Error string `json:"error"`
	// ExitStatus is the command's exit status; absent on a host's line
	// of several.
	ExitStatus int `json:"exit_status,omitempty"`
}

// JSONPeers is the output of `ntpctl peers --json` (schema ntpctl_peers):
// the association list of one host, a Mode 6 READSTAT of association 0,
// as ntpq -c as prints it.
type JSONPeers struct {
	Time          time.Time   `json:"time"`
	IP            string      `json:"ip"`
	Port          uint16      `json:"port"`
	Status        string      `json:"status"`
	StatusWord    uint16      `json:"status_word"` // the system status word of the reply
	StatusText    string      `json:"status_text"`
	Associations  []JSONAssoc `json:"associations"`
	Packets       int         `json:"packets"`
	Bytes         int         `json:"bytes"`
	RequestBytes  int         `json:"request_bytes"`
	Amplification float64     `json:"amplification"`
	Error         string      `json:"error,omitempty"`
}

// JSONAssoc is one association of [JSONPeers], its peer status word
// decoded as ntpq -c as decodes it.
type JSONAssoc struct {
	Index      int    `json:"ind"` // 1 for the first: ntpq's &1
	AssocID    uint16 `json:"assoc_id"`
	StatusWord uint16 `json:"status_word"`
	Conf       string `json:"conf"`       // "yes" or "no"
	Reach      string `json:"reach"`      // "yes", "no" or "none" (broadcast)
	Auth       string `json:"auth"`       // "none", "ok" or "bad"
	Condition  string `json:"condition"`  // "reject", "falsetick", … "sys.peer", "pps.peer"
	LastEvent  string `json:"last_event"` // "reachable", "" for an unnamed event
	EventCount int    `json:"count"`
}

// JSONMRUList is the output of `ntpctl mrulist --json` (schema
// ntpctl_mrulist): one host's MRU list, fetched as `ntpq -c mrulist`
// does (REQ_NONCE, then READ_MRU pages).
type JSONMRUList struct {
	Time   time.Time `json:"time"`
	IP     string    `json:"ip"`
	Port   uint16    `json:"port"`
	Status string    `json:"status"`
	// Nonce reports that the server answered REQ_NONCE.
	Nonce bool `json:"nonce"`
	// Complete reports that the server ended the list (now=).
	Complete bool `json:"complete"`
	// Truncated reports that the entry cap cut the list short.
	Truncated bool `json:"truncated"`
	// Pages is the READ_MRU replies taken.
	Pages int `json:"pages"`
	// Entries are the clients, newest first as ntpq prints them.
	Entries       []JSONMRUEntry `json:"entries"`
	Packets       int            `json:"packets"`
	Bytes         int            `json:"bytes"`
	RequestBytes  int            `json:"request_bytes"`
	Amplification float64        `json:"amplification"`
	Error         string         `json:"error,omitempty"`
}

// JSONMRUEntry is one client of an MRU list: the columns of `ntpq -c
// mrulist` and the times they come from.
type JSONMRUEntry struct {
	IP      string    `json:"ip"`
	Port    uint16    `json:"port"`
	Last    time.Time `json:"last"`
	First   time.Time `json:"first"`
	LstInt  int64     `json:"lstint"` // seconds from the last packet to the end of the list
	AvgInt  float64   `json:"avgint"` // mean seconds between its packets; 0 for one packet
	Count   uint64    `json:"count"`
	Mode    uint8     `json:"mode"`
	Version uint8     `json:"version"`
	// Restrict is the restrict mask (rs), a number.
	Restrict uint32  `json:"restrict"`
	Score    float64 `json:"score"`
	Dropped  uint64  `json:"drop"`
}
