package report

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Errors of TypeFromFileName.
var (
	// ErrFileName: the name does not have the form IntelMQ expects.
	ErrFileName = errors.New("report: file name does not match the report naming convention")
	// ErrUnknownType: the name is well formed, but its report type is not
	// one of the NTP reports.
	ErrUnknownType = errors.New("report: not an NTP report type")
)

// DefaultID is the id FileName uses when it is given none.
const DefaultID = "ntpctl"

// fileNameRE is the expression IntelMQ's Shadowserver parser applies to
// extra.file_name in its "detect" mode (report-schemas.md §5.1); group 1
// is the report type. Go's \w is ASCII-only where Python's is Unicode.
var fileNameRE = regexp.MustCompile(`^(?:\d{4}-\d{2}-\d{2}-)?(\w+)(-\w+)*\.csv$`)

// TypeFromFileName returns the report type a file name announces, the
// way IntelMQ reads it: "2024-07-04-scan_ntp-ID.csv" and "scan_ntp.csv"
// are ScanNTP, "2019-01-01-scan6_ntpmonitor-org-geo.csv" is
// Scan6NTPMonitor. Directories are ignored. A name that does not match
// returns ErrFileName; a well-formed name of another report returns its
// type and ErrUnknownType.
func TypeFromFileName(name string) (Type, error) {
	base := filepath.Base(name)
	m := fileNameRE.FindStringSubmatch(base)
	if m == nil {
		return "", fmt.Errorf("%w: %q", ErrFileName, base)
	}
	t := Type(m[1])
	if !t.Known() {
		return t, fmt.Errorf("%w: %q", ErrUnknownType, m[1])
	}
	return t, nil
}

// FileName returns the file name of a report in Shadowserver's
// convention, YYYY-MM-DD-<type>-<id>.csv (report-schemas.md §2.2), with
// the date in UTC. Characters of id other than ASCII letters, digits, '_'
// and '-' become '_', and empty dash-separated parts are dropped, so that
// IntelMQ recognises the name. An id left empty is DefaultID: the
// convention, and the expression Shadowserver documents for it
// (^\d{4}-\d{2}-\d{2}-([^-]+)-.+\.csv$), need one.
func FileName(date time.Time, t Type, id string) string {
	var b strings.Builder
	b.WriteString(date.UTC().Format("2006-01-02"))
	b.WriteByte('-')
	b.WriteString(string(t))
	if strings.Trim(id, "-") == "" {
		id = DefaultID
	}
	for _, part := range strings.Split(id, "-") {
		if part == "" {
			continue
		}
		b.WriteByte('-')
		for _, r := range part {
			if r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
	}
	b.WriteString(".csv")
	return b.String()
}
