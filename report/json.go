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
	// Report is the report type of the target: scan_ntp, scan6_ntp,
	// scan_ntpmonitor or scan6_ntpmonitor.
	Report Type `json:"report"`
	// IP is the target's address, an IPv4-mapped one unmapped.
	IP netip.Addr `json:"ip"`
	// Port is the target's UDP port.
	Port uint16 `json:"port"`
	// Status is the outcome, as ntpctl.Status writes it: ok, partial,
	// no-answer, ….
	Status string `json:"status"`
	// Error explains a status other than ok; empty otherwise.
	Error string `json:"error,omitempty"`
	// Time is when the first request was sent.
	Time time.Time `json:"time"`
	// Attempts counts the requests sent.
	Attempts int `json:"attempts"`
	// RTT is the round-trip time of the first reply datagram, in
	// nanoseconds; 0 without a reply.
	RTT time.Duration `json:"rtt_ns"`
	// Packets counts the reply datagrams.
	Packets int `json:"packets"`
	// Bytes is the sum of their UDP payloads (the CSV's response_size).
	Bytes int `json:"bytes"`
	// RequestBytes is the UDP payload size of one request.
	RequestBytes int `json:"request_bytes"`
	// Amplification is Bytes ÷ RequestBytes, unrounded; 0 when unknown.
	Amplification float64 `json:"amplification"`
	// Reportable reports that the result makes a CSV row.
	Reportable bool `json:"reportable"`
	// Monitor is the monlist reply, for an NTP Monitor result that has
	// one (the target sent something).
	Monitor *JSONMonitor `json:"monitor,omitempty"`
	// Variables is the READVAR reply, for an NTP Version result that
	// has one.
	Variables *JSONVars `json:"variables,omitempty"`
	// Enrichment is what enrichment found about IP.
	Enrichment JSONEnrich `json:"enrichment"`
}

// JSONMonitor is the monlist reply of a JSONRecord (see mode7.Reply).
type JSONMonitor struct {
	// Stats are the reassembler's packet counts.
	Stats mode7.ReassemblyStats `json:"stats"`
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
	Missing []uint8 `json:"missing,omitempty"`
	// Complete reports that every packet arrived and no error reply did.
	Complete bool `json:"complete"`
	// Entries are all the monitor entries received, in sequence order.
	Entries []JSONEntry `json:"entries"`
}

// JSONEntry is one monitor-list entry (see mode7.MonitorEntry).
type JSONEntry struct {
	// Addr is the client's address.
	Addr netip.Addr `json:"addr"`
	// LocalAddr is the server's address the client's packets arrived
	// on, when the entry layout carries it.
	LocalAddr netip.Addr `json:"local_addr"`
	// Port is the client's UDP source port.
	Port uint16 `json:"port"`
	// Mode is the NTP mode of the client's last packet.
	Mode uint8 `json:"mode"`
	// Version is the NTP version of the client's last packet.
	Version uint8 `json:"version"`
	// Count is the number of packets received from the client.
	Count uint32 `json:"count"`
	// AvgInt is avg_int.
	AvgInt uint32 `json:"avg_int"`
	// LastInt is last_int, seconds since the last packet.
	LastInt uint32 `json:"last_int"`
	// FirstInt is firsttime, seconds since the first packet.
	FirstInt uint32 `json:"first_int"`
	// Restrict is restr, the restriction flags.
	Restrict uint32 `json:"restrict"`
	// Flags says how the packets arrived (unicast, multicast, …).
	Flags uint32 `json:"flags"`
}

// JSONVars is the READVAR reply of a JSONRecord (see mode6.Reply).
type JSONVars struct {
	// Stats are the reassembler's fragment counts.
	Stats mode6.ReassemblyStats `json:"stats"`
	// Version is the NTP version of the reply.
	Version uint8 `json:"version"`
	// Leap is the leap indicator of the reply.
	Leap uint8 `json:"leap"`
	// Status is the status word of the reply.
	Status uint16 `json:"status_word"`
	// AssocID is the association id of the reply.
	AssocID uint16 `json:"assoc_id"`
	// Complete reports that every fragment arrived and no error reply
	// did.
	Complete bool `json:"complete"`
	// Holes lists the missing ranges of the reply data.
	Holes []mode6.Span `json:"holes,omitempty"`
	// Vars are all the variables, in wire order, duplicates kept.
	Vars []JSONVar `json:"vars"`
	// Data is the reply data as received (base64 in JSON), up to the
	// first hole: the exact text, where Vars may have lost octets that
	// parsing dropped or that are not UTF-8 (JSON strings are).
	Data []byte `json:"data,omitempty"`
	// Parse reports what parsing the variables had to repair.
	Parse mode6.ParseStats `json:"parse"`
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
	// Latitude is its latitude, when known.
	Latitude *float64 `json:"latitude,omitempty"`
	// Longitude is its longitude, when known.
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
	if res.Packets == 0 && res.Value.Packets == 0 {
		// No reply: Value is the zero Reply, whose LastSeq 0 and empty
		// list would read as a reply with no entries.
		return rec
	}
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
			AssocID: v.AssocID, Complete: v.Complete, Holes: v.Holes, Parse: v.Parse, Data: v.Data,
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
