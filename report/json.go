package report

import (
	"encoding/json"
	"io"
	"net/netip"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

// JSONWriter writes one JSON object per line and per target (JSON lines),
// with the whole result: more than the CSV reports carry, for pipelines
// that want every monitor entry or variable. A JSONWriter is not safe for
// concurrent use.
type JSONWriter struct {
	enc *json.Encoder
}

// NewJSONWriter returns a JSONWriter to w. Each object is written to w in
// one Write call.
func NewJSONWriter(w io.Writer) *JSONWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONWriter{enc: enc}
}

// JSONRecord is the object JSONWriter writes for one target. It is
// exported so that consumers can decode the lines back.
type JSONRecord struct {
	Report        Type          `json:"report"` // scan_ntp, scan6_ntpmonitor, …
	IP            netip.Addr    `json:"ip"`
	Port          uint16        `json:"port"`
	Status        string        `json:"status"` // ntpctl.Status text: ok, partial, …
	Error         string        `json:"error,omitempty"`
	Time          time.Time     `json:"time"` // first request sent
	Attempts      int           `json:"attempts"`
	RTT           time.Duration `json:"rtt_ns"`
	Packets       int           `json:"packets"`
	Bytes         int           `json:"bytes"`
	RequestBytes  int           `json:"request_bytes"`
	Amplification float64       `json:"amplification"` // bytes ÷ request_bytes, 0 when unknown
	Reportable    bool          `json:"reportable"`    // the result makes a CSV row
	Monitor       *JSONMonitor  `json:"monitor,omitempty"`
	Variables     *JSONVars     `json:"variables,omitempty"`
	Enrichment    JSONEnrich    `json:"enrichment"`
}

// JSONMonitor is the monlist reply of a JSONRecord.
type JSONMonitor struct {
	Stats    mode7.ReassemblyStats `json:"stats"`
	Impl     uint8                 `json:"impl"`
	Code     uint8                 `json:"code"`
	Version  uint8                 `json:"version"`
	ItemSize int                   `json:"item_size"`
	LastSeq  int                   `json:"last_seq"`
	Missing  []uint8               `json:"missing,omitempty"`
	Complete bool                  `json:"complete"`
	Entries  []JSONEntry           `json:"entries"`
}

// JSONEntry is one monitor-list entry (see mode7.MonitorEntry).
type JSONEntry struct {
	Addr      netip.Addr `json:"addr"`
	LocalAddr netip.Addr `json:"local_addr"`
	Port      uint16     `json:"port"`
	Mode      uint8      `json:"mode"`
	Version   uint8      `json:"version"`
	Count     uint32     `json:"count"`
	AvgInt    uint32     `json:"avg_int"`
	LastInt   uint32     `json:"last_int"`
	FirstInt  uint32     `json:"first_int"`
	Restrict  uint32     `json:"restrict"`
	Flags     uint32     `json:"flags"`
}

// JSONVars is the READVAR reply of a JSONRecord.
type JSONVars struct {
	Stats    mode6.ReassemblyStats `json:"stats"`
	Version  uint8                 `json:"version"`
	Leap     uint8                 `json:"leap"`
	Status   uint16                `json:"status_word"`
	AssocID  uint16                `json:"assoc_id"`
	Complete bool                  `json:"complete"`
	Holes    []mode6.Span          `json:"holes,omitempty"`
	Vars     []JSONVar             `json:"vars"` // wire order, duplicates kept
	Parse    mode6.ParseStats      `json:"parse"`
}

// JSONVar is one variable as the server sent it.
type JSONVar struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Quoted bool   `json:"quoted,omitempty"`
	Bare   bool   `json:"bare,omitempty"`
}

// JSONEnrich is what enrichment found about the address.
type JSONEnrich struct {
	Names       []string `json:"names,omitempty"`
	ASN         uint32   `json:"asn,omitempty"`
	ASName      string   `json:"as_name,omitempty"`
	ASPrefix    string   `json:"as_prefix,omitempty"`
	ASCountry   string   `json:"as_country,omitempty"`
	ASRegistry  string   `json:"as_registry,omitempty"`
	Country     string   `json:"country,omitempty"`
	Region      string   `json:"region,omitempty"`
	City        string   `json:"city,omitempty"`
	Latitude    *float64 `json:"latitude,omitempty"`
	Longitude   *float64 `json:"longitude,omitempty"`
	AbuseEmail  string   `json:"abuse_email,omitempty"`
	AbuseHandle string   `json:"abuse_handle,omitempty"`
	AbuseSource string   `json:"abuse_source,omitempty"`
	NAICS       int      `json:"naics,omitempty"`
	Sector      string   `json:"sector,omitempty"`
}

func newJSONRecord[R any](res *ntpctl.Result[R], e enrich.Result, v4, v6 Type) JSONRecord {
	addr := res.Target.Addr().Unmap()
	rec := JSONRecord{
		Report: v4, IP: addr, Port: res.Target.Port(), Status: res.Status.String(),
		Time: res.Time, Attempts: res.Attempts, RTT: res.RTT,
		Packets: res.Packets, Bytes: res.Bytes, RequestBytes: res.RequestBytes,
		Amplification: res.Amplification(),
	}
	if addr.Is6() {
		rec.Report = v6
	}
	if res.Err != nil {
		rec.Error = res.Err.Error()
	}
	en := JSONEnrich{
		Names: e.Names, ASN: e.ASN.Number, ASName: e.ASN.Name, ASCountry: e.ASN.Country, ASRegistry: e.ASN.Registry,
		Country: e.Geo.Country, Region: e.Geo.Region, City: e.Geo.City,
		AbuseEmail: e.Abuse.Email, AbuseHandle: e.Abuse.Handle, AbuseSource: e.Abuse.Source,
		NAICS: e.NAICS, Sector: e.Sector,
	}
	if e.ASN.Prefix.IsValid() {
		en.ASPrefix = e.ASN.Prefix.String()
	}
	if e.Geo.HasCoordinates {
		lat, lon := e.Geo.Latitude, e.Geo.Longitude
		en.Latitude, en.Longitude = &lat, &lon
	}
	rec.Enrichment = en
	return rec
}

// MonitorRecord returns the JSONRecord of a monlist result.
func MonitorRecord(res ntpctl.Result[mode7.Reply], e enrich.Result) JSONRecord {
	rec := newJSONRecord(&res, e, ScanNTPMonitor, Scan6NTPMonitor)
	rec.Reportable = MonitorReportable(&res)
	v := &res.Value
	m := &JSONMonitor{
		Stats: v.ReassemblyStats, Impl: uint8(v.Impl), Code: uint8(v.Code), Version: v.Version,
		ItemSize: v.ItemSize, LastSeq: v.LastSeq, Missing: v.Missing, Complete: v.Complete,
		Entries: make([]JSONEntry, len(v.Entries)),
	}
	for i, en := range v.Entries {
		m.Entries[i] = JSONEntry{
			Addr: en.Addr, LocalAddr: en.LocalAddr, Port: en.Port, Mode: en.Mode, Version: en.Version,
			Count: en.Count, AvgInt: en.AvgInt, LastInt: en.LastInt, FirstInt: en.FirstInt,
			Restrict: en.Restrict, Flags: en.Flags,
		}
	}
	rec.Monitor = m
	return rec
}

// VersionRecord returns the JSONRecord of a READVAR result.
func VersionRecord(res ntpctl.Result[*ntpctl.VersionReply], e enrich.Result) JSONRecord {
	rec := newJSONRecord(&res, e, ScanNTP, Scan6NTP)
	rec.Reportable = VersionReportable(&res)
	if v := res.Value; v != nil {
		jv := &JSONVars{
			Stats: v.ReassemblyStats, Version: v.Version, Leap: v.Leap, Status: v.Status,
			AssocID: v.AssocID, Complete: v.Complete, Holes: v.Holes, Parse: v.Parse,
			Vars: make([]JSONVar, len(v.Vars)),
		}
		for i, x := range v.Vars {
			jv.Vars[i] = JSONVar{Name: x.Name, Value: x.Value, Quoted: x.Quoted, Bare: x.Bare}
		}
		rec.Variables = jv
	}
	return rec
}

// WriteMonitor writes the record of a monlist result.
func (j *JSONWriter) WriteMonitor(res ntpctl.Result[mode7.Reply], e enrich.Result) error {
	return j.enc.Encode(MonitorRecord(res, e))
}

// WriteVersion writes the record of a READVAR result.
func (j *JSONWriter) WriteVersion(res ntpctl.Result[*ntpctl.VersionReply], e enrich.Result) error {
	return j.enc.Encode(VersionRecord(res, e))
}
