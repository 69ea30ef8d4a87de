// Package report writes and reads Shadowserver's two NTP scan reports,
// column for column, so that a scan's output drops into the pipelines
// that already consume Shadowserver's daily reports (IntelMQ, n6,
// AbuseIO, spreadsheets):
//
//   - NTP Version (report type scan_ntp, IPv6 scan6_ntp): one row per
//     server that answered a Mode 6 READVAR request (`ntpq -c rv`), 41
//     columns, VersionRow.
//   - NTP Monitor (scan_ntpmonitor, scan6_ntpmonitor): one row per server
//     that answered a Mode 7 monlist request (`ntpdc -c monlist`), 17
//     columns, MonitorRow.
//
// and two of ntpctl's own in the same style (the common columns and the
// quoting below), which Shadowserver does not publish:
//
//   - NTP MRU (scan_ntpmru, scan6_ntpmru): one row per server that gave
//     its MRU list (`ntpq -c mrulist`), MRURow: how many clients it
//     listed, never their addresses (they are third parties; JSONMRU has
//     them only when a caller sets its Clients).
//   - Accessible NTP (scan_ntpaccessible, scan6_ntpaccessible): one row
//     per server that answered a Mode 3 client request, AccessibleRow:
//     the reply's header (version, leap, stratum, poll, precision, root
//     delay and dispersion, refid, reference time).
//
// Type.Known is true for Shadowserver's four types only; IsMRU and
// IsAccessible name the others.
//
// The column lists, their history and the quoting rules below are
// described in full in docs/report-schemas.md in the module's repository
// (the section numbers cited in this package's comments are that file's),
// which cites Shadowserver's report_schema repository, its report pages
// and the sample files of IntelMQ and n6.
//
// # Layouts
//
// Writer writes the current layout (in force since the 2024-07-29 schema
// revision) unless WriterOptions.Layout names an older one: 2023-11-25,
// 2023-11-18, 2022-08, 2022, 2019 and 2014 (VersionColumns and
// MonitorColumns list them). Older layouts reorder and omit columns; the
// columns they have that the current one lacks (sic, and Monitor's size,
// the old name of response_size) are taken from the row's Extra and
// ResponseSize. The layouts that still have sic (2022-08 and older) write
// an unknown naics or sic as 0, as Shadowserver did before 2023-11.
//
// Shadowserver states that the column order is not fixed, so Reader maps
// columns by header name. It reads every layout, and any other order,
// renames size to response_size, and keeps columns it does not know in
// the row's Extra. Where a name appears twice in a header, its first
// column is read.
//
// # Quoting
//
// Writer produces what a real report looks like (report-schemas.md §2.3):
// every header name quoted; a value written bare when it consists only of
// ASCII digits, nothing when it is empty, and quoted otherwise (so
// "-22", "0.000" and "27.00" are quoted), with embedded quotes doubled;
// LF line ends, the last line included; no BOM; timestamps
// "YYYY-MM-DD HH:MM:SS" in UTC. Reading such a file and writing its rows
// again reproduces it byte for byte.
//
// Values come from servers and may hold anything. So that no value can
// break a row, the writer replaces each line break (CR, LF or CR LF) by
// '|', as Shadowserver flattens multi-line banners (U+2028 and U+2029
// too), and a tab by a space;
// it drops NUL, the other control characters (C0, DEL and C1) and
// replaces octets that are not UTF-8 by U+FFFD.
//
// # Formulas
//
// A value such as =HYPERLINK(…) or =cmd|… (a server's system= variable,
// a city in a hostile MMDB file, an AS name) is a formula to a
// spreadsheet. WriterOptions.NeutralizeFormulas defuses them with a
// leading ', as OWASP advises. Whether to is a question of who reads the
// file, so it is decided per output, not once: a report fed to IntelMQ,
// n6 or another pipeline must be byte for byte what Shadowserver writes
// (a neutralised value is a changed value), so the Writer's zero value,
// and the scanner's main reports, keep formulas as they are; a file mailed
// to the people who run a network, who open it in a spreadsheet, gets
// them neutralised: the scanner's -split files (one per AS or country,
// the ones a CERT sends on) unless -split-raw, and the e-mail attachments
// of the report service.
//
// Reader accepts both quoting styles found in the wild, real reports
// (bare digits, everything else quoted) and Shadowserver's website
// samples (quoted only when needed), and RFC 4180 files generally,
// including quoted line breaks. A row that cannot be read (wrong number of
// fields, broken quoting, a line over the length limit, an unparsable
// timestamp, ip (or one with a zone) or port) is
// reported as a *RowError with its line number and skipped; the rows
// around it are not lost, even after an unclosed quote.
//
// # Which results become rows
//
// A Shadowserver report lists the servers that answered, not every
// address probed. NewMonitorRow makes a row for a monlist result with
// status ok or partial that kept at least one reply packet: the server
// sent (part of) its monitor list. Error replies (INFO_ERR_NODATA, monlist
// disabled), silence and undecodable answers make none. NewVersionRow
// makes a row for a READVAR result with status ok or partial and at least
// one system variable (association 0: a peer's variables are not the
// server's). Reportable says which results make rows. JSONWriter, by
// contrast, writes every result, with its status and error.
//
// Nothing is invented: a column whose value is unknown is empty. The
// builders fill hostname (and hostname_source "ptr") only from reverse
// DNS, naics and sector only when an enrichment source provides them, and
// pass NTP variables through as the server printed them (NewVersionRow).
//
// # Response size and amplification
//
// response_size is the sum of the UDP payloads of the reply datagrams
// (headers excluded), ntpctl.Result.Bytes. amplification is response_size
// divided by the UDP payload size of the request actually sent
// (Result.RequestBytes), with two decimals. Shadowserver's own figures
// divide by 12 for both reports (inferred in report-schemas.md §3.3 and
// §4.2 from its samples: 324 → 27.00, 664 → 55.33), the size of a bare
// Mode 6 header; ntpctl's monlist request is 48 octets as ntpdc sends it,
// so its NTP Monitor amplification is a quarter of Shadowserver's for the
// same reply.
//
// # Beyond the CSV
//
// JSONWriter writes JSON lines with the whole result of each target. The
// constituency tools Filter, ByPrefix, ByASN, ByCountry and Split cut a
// report down or into one file per AS or country (and address family),
// named by FileName in
// Shadowserver's convention (YYYY-MM-DD-scan_ntp-ID.csv), which
// TypeFromFileName reads back as IntelMQ does. Splitter does what Split
// does as the rows arrive, with a bounded number of open files and
// without keeping the rows. Stats counts a scan by
// country, AS, daemon version and status, with the distribution of
// amplification.
//
// # Columns and CSV
//
// Each report has one column table: every column's name, the row field
// that holds it, its old names (size) and, for NTP Version, the Mode 6
// variables that fill it. The header, the column order, the historical
// layouts (lists of names from the table), the builders, the writer and
// the reader all work from it.
//
// The writer appends every byte itself, from the fields the table names,
// and uses no CSV library. It used github.com/gocarina/gocsv until
// 2026-12: gocsv reflected the row's fields, which are strings the
// builders or the reader had already produced, boxing each one, and the
// writer then redid header, order, quoting and cleaning itself, so gocsv
// did no work it needed and cost 42–45 allocations per row. Without it
// (BenchmarkWriteRead, 100,000 NTP Version rows, 2-core AMD EPYC,
// medians of 6): writing row by row went from 629 ms, 246 MB and
// 4,525,016 allocations to 142 ms and 22 allocations (159,000 → 707,000
// rows/s), a batch from 520 ms to 151 ms (193,000 → 662,000 rows/s);
// reading, which never used gocsv, is unchanged (about 1.5 allocations
// and 1.7 µs per row). A row written allocates nothing (TestWriteAllocs).
package report
