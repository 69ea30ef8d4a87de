package mail_test

import (
	"bytes"
	"fmt"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/mail"
)

// A report's mail, built without sending it: Deliver does this for each
// constituency and contact, and sends the result through a Relay.
func ExampleBuild() {
	r := &mail.Report{List: "as64496", Type: report.ScanNTPMonitor, Day: "2026-12-02",
		FileName: "2026-12-02-scan_ntpmonitor-as64496-asn.csv", CSV: []byte("\"timestamp\",\"ip\"\n\"2026-12-02 06:00:00\",\"192.0.2.10\"\n"), Rows: 1,
		URL: "https://reports.example/dl/0123"}
	msg, _, err := mail.Build([]*mail.Report{r}, []string{"noc@example.net"}, mail.MessageOptions{
		From: "NTP reports <autoreports@reports.example>", Date: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)})
	if err != nil {
		fmt.Println(err)
		return
	}
	mr, err := gomail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		fmt.Println(err)
		return
	}
	subject, _ := mr.Header.Subject()
	fmt.Println(subject)
	fmt.Println(mr.Header.Get("List-Id"))
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if h, ok := p.Header.(*gomail.AttachmentHeader); ok {
			name, _ := h.Filename()
			fmt.Println("attached:", name)
		}
	}
	// Output:
	// [as64496] Shadowserver as64496 NTP Monitor Report: 2026-12-02
	// <as64496.reports.example>
	// attached: 2026-12-02-scan_ntpmonitor-as64496-asn.csv.zip
}
