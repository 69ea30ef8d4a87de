package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ntpctl/ntpctl/report"
)

// The lab: a week of daily scans of 127.42.0.0/23 as the scanner writes
// them (a directory per day: the reports and the statistics), with hosts
// that get fixed, appear, flap and answer every other day, one
// interrupted run, and two constituencies.
const labConstituencies = `# reportd's lab constituencies
constituencies:
  - name: as64496
    asns: [64496]
    contacts: [noc@as64496.example]
  - name: lab_hi
    prefixes: [127.42.1.0/24]
    contacts: [cert@lab.example]
`

var labHosts = []struct {
	ip, asn, geo string
	days         string // the days (1…7) it answers READVAR
}{
	{"127.42.0.1", "64496", "NL", "1234567"},
	{"127.42.0.2", "64496", "NL", "123"}, // fixed after day 3
	{"127.42.0.3", "64496", "DE", "1235"},
	{"127.42.1.4", "64497", "NL", "13457"}, // flaps
	{"127.42.1.5", "64497", "DE", "1357"},  // every other day
	{"127.42.1.6", "64497", "DE", "234567"},
}

func labDate(day int) time.Time { return time.Date(2026, 11, day, 6, 0, 0, 0, time.UTC) }

// writeLabDay writes day's scan directory under root.
func writeLabDay(root string, day int) (string, error) {
	dir := filepath.Join(root, fmt.Sprintf("scan-%d", day))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	date := labDate(day)
	var rows []report.VersionRow
	for _, h := range labHosts {
		for _, d := range h.days {
			if int(d-'0') == day {
				rows = append(rows, report.VersionRow{
					Common: report.Common{Timestamp: date.Add(2 * time.Second).Format(report.TimeFormat), Severity: "medium",
						IP: h.ip, Protocol: "udp", Port: "123", Tag: "ntpversion", ASN: h.asn, Geo: h.geo},
					Version: "ntpd 4.2.8p15@1.3728-o", Stratum: "2", ResponseSize: "420", Amplification: "35.00"})
			}
		}
	}
	f, err := os.Create(filepath.Join(dir, report.FileName(date, report.ScanNTP, "lab")))
	if err != nil {
		return "", err
	}
	if err := report.WriteAll(f, rows, report.WriterOptions{}); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	st := report.JSONScanStats{Started: date, Finished: date.Add(time.Minute), Targets: 512, Seed: uint64(day), Shard: "0/1",
		Version: &report.JSONProbeStats{}, Scanner: "reportd lab", Interrupted: day == 4}
	st.Space = []string{"127.42.0.0-127.42.1.255"}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-ntpctl-lab-stats.json", date.Format(time.DateOnly))
	return dir, os.WriteFile(filepath.Join(dir, name), b, 0o644)
}

// lab runs the week through a temporary store and shows a day's cycle.
func lab(ctx context.Context, w io.Writer) error {
	root, err := os.MkdirTemp("", "reportd-lab-")
	if err != nil {
		return err
	}
	csPath := filepath.Join(root, "constituencies.yaml")
	if err := os.WriteFile(csPath, []byte(labConstituencies), 0o644); err != nil {
		return err
	}
	db := filepath.Join(root, "store.db")
	fmt.Fprintf(w, "reportd lab: a week of scans of 127.42.0.0/23 into %s\n\n", db)
	var dirs []string
	for day := 1; day <= 7; day++ {
		dir, err := writeLabDay(root, day)
		if err != nil {
			return err
		}
		dirs = append(dirs, dir)
	}
	steps := [][]string{
		append([]string{"import", "-db", db, "-constituencies", csPath}, dirs...),
		{"runs", "-db", db},
		{"report", "-db", db, "-day", "2026-11-07", "-type", "scan_ntp", "-constituency", "lab_hi"},
		{"diff", "-db", db, "-from", "6", "-to", "7", "-constituency", "as64496"},
		{"diff", "-db", db, "-from", "6", "-to", "7"},
		{"history", "-db", db, "127.42.0.2"},
		{"series", "-db", db, "-constituency", "lab_hi", "-since", "2026-11-06"},
	}
	for _, s := range steps {
		fmt.Fprintf(w, "$ reportd %s\n", shortArgs(s, root))
		if err := run(ctx, s, w, w); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "the store and the scan directories stay in %s\n", root)
	return nil
}

// shortArgs shows a command line with the lab directory as $LAB.
func shortArgs(args []string, root string) string {
	out := ""
	for i, a := range args {
		if rel, err := filepath.Rel(root, a); err == nil && filepath.IsAbs(a) {
			a = "$LAB/" + rel
		}
		if i > 0 {
			out += " "
		}
		out += a
		if i >= 6 && args[0] == "import" && i < len(args)-1 {
			out += " …"
			break
		}
	}
	return out
}
