package report

import (
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
)

// The NTP MRU report: servers that give their MRU list (Mode 6
// READ_MRU, ntpq -c mrulist) to anyone, and so show everyone the
// addresses of their recent clients. Shadowserver publishes no such
// report; this one is written in the style of its NTP reports: the same
// common columns and quoting, then its own. It is not an amplification
// report (the nonce round trip proves the asker's address, so the list
// cannot be aimed at a victim) but an exposure one, of severity "low" by
// default.
//
// The clients' addresses never go into the CSV: they are third parties.
// A row says how many there were.
const (
	// ScanNTPMRU is the NTP MRU report, IPv4 servers.
	ScanNTPMRU Type = "scan_ntpmru"
	// Scan6NTPMRU is the NTP MRU report, IPv6 servers.
	Scan6NTPMRU Type = "scan6_ntpmru"
)

// IsMRU reports whether t is an NTP MRU report type.
func (t Type) IsMRU() bool { return t == ScanNTPMRU || t == Scan6NTPMRU }

// MRUTypeOf returns the MRU report type for a server's address.
func MRUTypeOf(addr netip.Addr) Type {
	if addr.Unmap().Is6() {
		return Scan6NTPMRU
	}
	return ScanNTPMRU
}

// MRURow is one row of the NTP MRU report: a server that answered with
// its MRU list.
type MRURow struct {
	Common

	Entries      string // mru_entries: distinct client addresses listed
	Complete     string // mru_complete: "true" when the server ended the list, "false" when a cap or an error cut it
	Version      string // version: the server's ntpd version variable, when READVAR answered
	Packets      string // reply datagrams received, the nonce's included
	ResponseSize string // UDP payload octets received

	// Extra holds the columns of a read file that the layout lacks, by
	// header name.
	Extra map[string]string
	// Line is the line number of the row in the file it was read from
	// (the header is line 1); 0 for rows built in memory.
	Line int
}

var mruTable = slices.Concat(
	lift(commonTable, func(r *MRURow) *Common { return &r.Common }),
	[]column[MRURow]{
		{name: "mru_entries", field: func(r *MRURow) *string { return &r.Entries }},
		{name: "mru_complete", field: func(r *MRURow) *string { return &r.Complete }},
		{name: "version", field: func(r *MRURow) *string { return &r.Version }},
		{name: "packets", field: func(r *MRURow) *string { return &r.Packets }},
		{name: "response_size", field: func(r *MRURow) *string { return &r.ResponseSize }},
	},
)

// mruLayouts: the report has one layout; every Layout writes it.
var mruLayouts = oneLayout(mruTable)

// oneLayout is the layouts of a report that has only one: ntpctl's own
// reports, which every Layout writes alike.
func oneLayout[T any](table []column[T]) (l [numLayouts][]string) {
	for i := range l {
		l[i] = names(table, nil)
	}
	return l
}

var mruSchema = newSchema(ScanNTPMRU, mruTable, &mruLayouts, func(r *MRURow) *Common { return &r.Common },
	func(r *MRURow) *map[string]string { return &r.Extra }, func(r *MRURow) *int { return &r.Line })

// MRUColumns returns the NTP MRU report's column names.
func MRUColumns() []string { return slices.Clone(mruLayouts[LayoutCurrent]) }

// Values returns the row's fields in the order of the layout.
func (r *MRURow) Values() []string { return mruSchema.values(r) }

// AppendValues appends the row's fields, in the order of the layout, to
// dst.
func (r *MRURow) AppendValues(dst []string) []string { return mruSchema.appendValues(dst, r) }

// Get returns the value of the column called name, or of a column kept
// in Extra.
func (r *MRURow) Get(name string) (string, bool) { return mruSchema.get(r, name) }

// MRUReportable reports whether an MRU list result is a finding: the
// server sent (part of) its list, at least one client in it. A refusal,
// a nonce alone and silence are not.
func MRUReportable(res *ntpctl.Result[ntpctl.MRUResult]) bool {
	return (res.Status == ntpctl.StatusOK || res.Status == ntpctl.StatusPartial) && len(res.Value.Entries) > 0
}

// NewMRURow builds the NTP MRU row of an MRU list result, what
// enrichment found about its address, and the server's version variable
// ("" when READVAR did not answer). ok is false when the result is not a
// finding (MRUReportable). The severity is "low" and the tag "ntpmru"
// unless opt says otherwise.
func NewMRURow(res ntpctl.Result[ntpctl.MRUResult], version string, e enrich.Result, opt BuildOptions) (row MRURow, ok bool) {
	if !MRUReportable(&res) {
		return row, false
	}
	if opt.Severity == "" {
		opt.Severity = "low"
	}
	fillCommon(&row.Common, res.Target, res.Time, e, opt, "ntpmru")
	row.Entries = strconv.Itoa(len(res.Value.Entries))
	row.Complete = strconv.FormatBool(res.Value.Complete)
	row.Version = version
	row.Packets = positive(res.Packets)
	row.ResponseSize = positive(res.Bytes)
	return row, true
}

// JSONMRU is the MRU list part of a JSONRecord (see ntpctl.MRUResult),
// for an NTP MRU result whose target sent something. NewRecord never
// fills Clients: the clients are third parties, and their addresses are
// kept only where the user asked for them (the scanner's -mru-clients),
// by setting Clients to MRUEntries of the result.
type JSONMRU struct {
	// Nonce reports that the server answered REQ_NONCE.
	Nonce bool `json:"nonce"`
	// Complete reports that the server ended the list.
	Complete bool `json:"complete"`
	// Truncated reports that the probe's cap on entries cut the list.
	Truncated bool `json:"truncated"`
	// Pages is the READ_MRU replies taken.
	Pages int `json:"pages"`
	// Entries is the number of distinct client addresses listed.
	Entries int `json:"entries"`
	// ErrorCode is the Mode 6 error code that refused the nonce or a page
	// (mode6.ServerError: 1 CERR_PERMISSION, 2 CERR_BADFMT, 5
	// CERR_UNKNOWNVAR, 6 CERR_BADVALUE); nil without one.
	ErrorCode *int `json:"error_code,omitempty"`
	// Clients are the entries, newest first; empty unless asked for.
	Clients []JSONMRUEntry `json:"clients,omitempty"`
}

func newJSONMRU(v *ntpctl.MRUResult, err error) *JSONMRU {
	return &JSONMRU{Nonce: v.Nonce, Complete: v.Complete, Truncated: v.Truncated, Pages: v.Pages,
		Entries: len(v.Entries), ErrorCode: errorCode[mode6.ServerError](v.Err, err)}
}

// MRUEntries returns the entries of an MRU list newest first, as ntpq
// -c mrulist prints them, with lstint counted to the end of the list
// (the server's now=, else the newest entry) and times near ref.
func MRUEntries(v *ntpctl.MRUResult, ref time.Time) []JSONMRUEntry {
	end := v.Now
	if !v.Complete {
		end = 0
		for _, e := range v.Entries {
			end = max(end, e.Last)
		}
	}
	out := make([]JSONMRUEntry, 0, len(v.Entries))
	for i := len(v.Entries) - 1; i >= 0; i-- { // the result is oldest first
		e := v.Entries[i]
		j := JSONMRUEntry{IP: e.Addr.Addr().String(), Port: e.Addr.Port(), Last: e.Last.TimeNear(ref).UTC(),
			First: e.First.TimeNear(ref).UTC(), LstInt: int64(float64(int64(end-e.Last))/(1<<32) + 0.5),
			Count: e.Count, Mode: e.Mode, Version: e.Version, Restrict: e.Restrict, Score: e.Score, Dropped: e.Dropped}
		if e.Count > 1 {
			j.AvgInt = max(0, float64(int64(e.Last-e.First))/(1<<32)) / float64(e.Count-1)
		}
		out = append(out, j)
	}
	return out
}
