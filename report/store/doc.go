// Package store keeps the history of scans: every run imported (when,
// which report types, the target space it covered, whether it completed),
// every row of every run with the values its report had, which
// constituencies each row belonged to when it was imported, and the life
// of each finding, keyed by report type, address, port and protocol:
// first seen, last seen, open since, and fixed — only after FixAfter (2)
// complete runs whose target space covered it missed it, so a single lost
// reply is not a fix; a host that answers again reopens.
//
// It answers what a CERT asks of daily reports: the rows of a day per
// constituency and report type, exactly the CSV the scanner writes
// (WriteReport); the diff between two runs per constituency, new, fixed,
// persisting with open-since, absent and not covered (Diff);
// Shadowserver's delta mode (ReportQuery.Delta); the findings open now
// (OpenFindings); and the history of one address (History).
//
// Two engines share one schema: SQLite (modernc.org/sqlite, pure Go, the
// default: a path is a DSN) and PostgreSQL (jackc/pgx, "postgres://…").
// Migrations are versioned and applied by Open. An import is one
// transaction (a failed or cancelled import leaves the store as it was)
// and uses each engine's bulk path: prepared multi-row inserts for
// SQLite, COPY for PostgreSQL. Importing the same content twice changes
// nothing; imports on PostgreSQL are serialised with an advisory lock, so
// two importers at once lose nothing.
//
// Constituencies are described in a YAML file (ParseConstituencies);
// every value read from it, from a report file or from a statistics file
// is validated where it enters.
package store
