package mail

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"
	"sync"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

// Report is one constituency's report of one type and day, as a mail
// carries it, or one part of such a report.
type Report struct {
	// List is the constituency's name: the subject's [List] and the
	// List-ID.
	List string
	Type report.Type
	Day  string // YYYY-MM-DD
	// FileName is the CSV's name (YYYY-MM-DD-<type>-<org>-<filter>.csv).
	// The parts of a split report keep the whole report's name, which is
	// what the parsers read the feed from.
	FileName string
	CSV      []byte
	Rows     int
	// URL is the report's download URL (always in the body).
	URL string
	// Delta marks a delta day's report: only the rows that changed.
	Delta bool
	// Attach is how this report goes in the mail; "" means
	// MessageOptions.Attach.
	Attach store.Attach
	// Part and Parts: a report split over several mails is sent as parts
	// 1 … Parts, each with the CSV's header and some of its rows; Part
	// is 0 for a whole report.
	Part, Parts int

	zipOnce sync.Once
	zipped  []byte
	zipErr  error
}

// zip returns the report's CSV zipped (made once, however many mails
// carry it).
func (r *Report) zip() ([]byte, error) {
	r.zipOnce.Do(func() {
		modified, err := time.Parse(time.DateOnly, r.Day)
		if err != nil {
			modified = time.Now()
		}
		var zb bytes.Buffer
		zw := zip.NewWriter(&zb)
		f, err := zw.CreateHeader(&zip.FileHeader{Name: r.FileName, Method: zip.Deflate, Modified: modified.UTC()})
		if err == nil {
			_, err = f.Write(r.CSV)
		}
		if err == nil {
			err = zw.Close()
		}
		r.zipped, r.zipErr = zb.Bytes(), err
	})
	return r.zipped, r.zipErr
}

// attachOf is how r goes into a mail made with default.
func (r *Report) attachOf(def store.Attach) store.Attach {
	switch {
	case r.Attach != "":
		return r.Attach
	case def != "":
		return def
	}
	return store.AttachZip
}

// attachedSize is what r adds to a mail made with def: its attachment,
// base64 in lines of 76, and a part header.
func (r *Report) attachedSize(def store.Attach) (int, error) {
	n := 0
	switch r.attachOf(def) {
	case store.AttachURL:
		return 256, nil // its lines in the text
	case store.AttachCSV:
		n = len(r.CSV)
	default:
		z, err := r.zip()
		if err != nil {
			return 0, err
		}
		n = len(z)
	}
	b64 := (n + 2) / 3 * 4
	return b64 + (b64+75)/76*2 + 512, nil
}

// MessageOptions shape a report's mail. From is required.
type MessageOptions struct {
	// From is the sender's address (autoreports@example.net).
	From string
	// ListDomain makes the List-ID <list.ListDomain>; "" means From's
	// domain.
	ListDomain string
	// Attach is how the report is attached; "" means zipped.
	Attach store.Attach
	// Date is the mail's date; zero means now.
	Date time.Time
	// DKIM signs the mail when set.
	DKIM *DKIM
	// MessageID is the Message-ID to use (without angle brackets); ""
	// makes a new one.
	MessageID string
}

// Errors of message building.
var (
	ErrAddress = errors.New("mail: bad address")
	// ErrNoReport: Build was given no report, or reports that one mail
	// cannot carry together.
	ErrNoReport = errors.New("mail: no report for the mail")
	// ErrDKIMAlignment: the DKIM domain is not From's (nor a parent of
	// it); see DKIM.Unaligned.
	ErrDKIMAlignment = errors.New("mail: DKIM domain not aligned with From")
)

// Title is a report type's name in the subject: "NTP Version", "NTP
// Monitor", and the same with "IPv6" after it for the IPv6 reports.
func Title(t report.Type) string {
	s := "NTP Version"
	if t.IsMonitor() {
		s = "NTP Monitor"
	}
	if strings.HasPrefix(string(t), "scan6_") {
		s += " IPv6"
	}
	return s
}

// Subject is Shadowserver's subject of a report mail:
// "[List] Shadowserver List NTP Monitor Report: YYYY-MM-DD".
func Subject(r *Report) string {
	s := fmt.Sprintf("[%s] Shadowserver %s %s Report: %s", r.List, r.List, Title(r.Type), r.Day)
	if r.Parts > 1 {
		s += fmt.Sprintf(" (part %d of %d)", r.Part, r.Parts)
	}
	return s
}

// subjectOf is the subject of a mail carrying reps: Subject's for one
// report; for several (a contact's reports of several lists), their
// names in the brackets, the first three and how many more.
func subjectOf(reps []*Report) string {
	if len(reps) == 1 {
		return Subject(reps[0])
	}
	var names []string
	for i, r := range reps {
		if i == 3 {
			names[2] += fmt.Sprintf(" and %d more", len(reps)-3)
			break
		}
		names = append(names, r.List)
	}
	return fmt.Sprintf("[%s] Shadowserver %s Report: %s", strings.Join(names, ", "), Title(reps[0].Type), reps[0].Day)
}

// advice is the body's remediation, by report.
var advice = map[bool]string{
	true: `The NTP Monitor report lists NTP servers in your network that answer the
Mode 7 "monlist" query (ntpdc -n -c monlist) from anywhere: one small request
makes them send up to 100 packets of recent clients, which attackers use to
amplify denial-of-service floods (CVE-2013-5211).

How to fix it:
  1. Upgrade to ntpd 4.2.7p26 or later (a current 4.2.8 release) or to ntpsec:
     they have no monlist.
  2. Until then, turn the monitor off in ntp.conf:  disable monitor
  3. Refuse status queries from other hosts (time service keeps working):
       restrict default kod limited nomodify notrap nopeer noquery
       restrict -6 default kod limited nomodify notrap nopeer noquery
       restrict 127.0.0.1
       restrict ::1
`,
	false: `The NTP Version report lists NTP servers in your network that answer Mode 6
control queries (ntpq -c rv) from anywhere: the answer is many times larger
than the query, which attackers use to amplify denial-of-service floods, and
it tells them the daemon's version.

How to fix it:
  1. Refuse status queries from other hosts in ntp.conf (time service keeps
     working):
       restrict default kod limited nomodify notrap nopeer noquery
       restrict -6 default kod limited nomodify notrap nopeer noquery
       restrict 127.0.0.1
       restrict ::1
  2. Keep the daemon current (a 4.2.8 release or ntpsec).
`,
}

// body is the mail's text.
func body(reps []*Report, def store.Attach) string {
	var b strings.Builder
	r := reps[0]
	what := "report"
	if r.Delta {
		what = "report of the changes since the previous day (delta mode)"
	}
	switch {
	case len(reps) > 1:
		fmt.Fprintf(&b, "These are the %s reports of %d lists on %s.\n", Title(r.Type), len(reps), r.Day)
	case r.Parts > 1:
		fmt.Fprintf(&b, "This is part %d of %d of the %s %s for %s on %s: %d row(s) of it.\n", r.Part, r.Parts, Title(r.Type), what, r.List, r.Day, r.Rows)
		b.WriteString("The report was too large for one mail; each part has the CSV's header line.\n")
	default:
		fmt.Fprintf(&b, "This is the %s %s for %s on %s: %d row(s).\n", Title(r.Type), what, r.List, r.Day, r.Rows)
	}
	for _, r := range reps {
		b.WriteString("\n")
		if len(reps) > 1 {
			fmt.Fprintf(&b, "%s: %d row(s)", r.List, r.Rows)
			if r.Delta {
				b.WriteString(", the changes since the previous day (delta mode)")
			}
			b.WriteString(".\n")
		}
		switch r.attachOf(def) {
		case store.AttachURL:
			fmt.Fprintf(&b, "The report (CSV): %s\n", r.FileName)
		case store.AttachCSV:
			fmt.Fprintf(&b, "Attached: %s\n", r.FileName)
		default:
			fmt.Fprintf(&b, "Attached, zipped: %s.zip\n", r.FileName)
		}
		if r.Parts > 1 {
			fmt.Fprintf(&b, "Download (the whole report):\n%s\n", r.URL)
		} else {
			fmt.Fprintf(&b, "Download:\n%s\n", r.URL)
		}
	}
	b.WriteString("\n")
	b.WriteString(advice[r.Type.IsMonitor()])
	b.WriteString("\nCheck a host yourself: ntpq -c rv HOST, ntpdc -n -c monlist HOST.\n")
	return b.String()
}

// Build returns the mail carrying reports (one, or several of one type
// and day: a contact's reports of several lists) to the given addresses,
// and its Message-ID (without angle brackets).
func Build(reports []*Report, to []string, opt MessageOptions) (msg []byte, messageID string, err error) {
	from, err := mail.ParseAddress(opt.From)
	if err != nil {
		return nil, "", fmt.Errorf("%w: From %q: %v", ErrAddress, opt.From, err)
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	var rcpts []*gomail.Address
	for _, a := range to {
		p, err := mail.ParseAddress(a)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %q: %v", ErrAddress, a, err)
		}
		rcpts = append(rcpts, &gomail.Address{Name: p.Name, Address: p.Address})
	}
	if len(rcpts) == 0 {
		return nil, "", fmt.Errorf("%w: no recipient", ErrAddress)
	}
	if len(reports) == 0 {
		return nil, "", ErrNoReport
	}
	for _, r := range reports {
		if !store.IsToken(r.List) {
			return nil, "", fmt.Errorf("mail: list name %q is not a token", r.List)
		}
		if r.Type != reports[0].Type || r.Day != reports[0].Day || len(reports) > 1 && r.Parts > 1 {
			return nil, "", fmt.Errorf("%w: reports of several types or days, or a part with other reports", ErrNoReport)
		}
	}
	if opt.DKIM != nil {
		if err := opt.DKIM.aligned(from.Address); err != nil {
			return nil, "", err
		}
	}
	listDomain := opt.ListDomain
	if listDomain == "" {
		listDomain = domain
	}
	date := opt.Date
	if date.IsZero() {
		date = time.Now()
	}
	var h gomail.Header
	h.SetDate(date)
	h.SetAddressList("From", []*gomail.Address{{Name: from.Name, Address: from.Address}})
	h.SetAddressList("To", rcpts)
	h.SetSubject(subjectOf(reports))
	messageID = opt.MessageID
	if messageID == "" {
		var raw [12]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, "", err
		}
		messageID = date.UTC().Format("20060102150405") + "." + hex.EncodeToString(raw[:]) + "@" + domain
	}
	h.SetMessageID(messageID)
	if len(reports) == 1 {
		h.Set("List-ID", fmt.Sprintf("<%s.%s>", strings.ToLower(reports[0].List), listDomain))
	} else {
		// Not any one list's: two labels, where a list's has one.
		h.Set("List-ID", fmt.Sprintf("<aggregate.reports.%s>", listDomain))
	}
	h.Set("Precedence", "list")
	h.Set("Auto-Submitted", "auto-generated")
	h.Set("X-Auto-Response-Suppress", "All")

	var buf bytes.Buffer
	mw, err := gomail.CreateWriter(&buf, h)
	if err != nil {
		return nil, "", err
	}
	var th gomail.InlineHeader
	th.Set("Content-Type", "text/plain; charset=utf-8")
	// The text is ASCII in short lines: sent as it is, so that the
	// download URL stays one string for the parsers that search the raw
	// body (quoted-printable would break it across lines).
	th.Set("Content-Transfer-Encoding", "7bit")
	tw, err := mw.CreateSingleInline(th)
	if err != nil {
		return nil, "", err
	}
	if _, err := io.WriteString(tw, body(reports, opt.Attach)); err != nil {
		return nil, "", err
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	for _, r := range reports {
		switch r.attachOf(opt.Attach) {
		case store.AttachZip:
			z, err := r.zip()
			if err != nil {
				return nil, "", err
			}
			if err := attachPart(mw, r.FileName+".zip", "application/zip", z); err != nil {
				return nil, "", err
			}
		case store.AttachCSV:
			if err := attachPart(mw, r.FileName, "text/csv", r.CSV); err != nil {
				return nil, "", err
			}
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	msg = buf.Bytes()
	if opt.DKIM != nil {
		if msg, err = opt.DKIM.sign(msg); err != nil {
			return nil, "", err
		}
	}
	return msg, messageID, nil
}

func attachPart(mw *gomail.Writer, name, typ string, data []byte) error {
	var ah gomail.AttachmentHeader
	ah.Set("Content-Type", typ)
	ah.SetFilename(name)
	aw, err := mw.CreateAttachment(ah)
	if err != nil {
		return err
	}
	if _, err := aw.Write(data); err != nil {
		return err
	}
	return aw.Close()
}

// DKIM signs mails for a domain with a selector's key.
type DKIM struct {
	Domain, Selector string
	Key              crypto.Signer
	// Unaligned allows a Domain that is neither From's domain nor a
	// parent of it. Such a signature does not pass DMARC for From, so
	// Build refuses it unless this is set.
	Unaligned bool
}

// signedHeaders are the fields a DKIM signature covers. From, To,
// Subject, Date and Message-ID are listed once more than the mail has
// them (oversigned): a field of that name added on the way breaks the
// signature.
var signedHeaders = []string{"From", "From", "To", "To", "Subject", "Subject", "Date", "Date", "Message-ID", "Message-ID",
	"List-ID", "MIME-Version", "Content-Type", "Auto-Submitted", "Precedence"}

// aligned checks DMARC's relaxed alignment of the signing domain with
// the From address: the same domain or a parent of it.
func (d *DKIM) aligned(from string) error {
	_, fd, _ := strings.Cut(from, "@")
	fd, dd := strings.ToLower(strings.TrimSuffix(fd, ".")), strings.ToLower(strings.TrimSuffix(d.Domain, "."))
	if d.Unaligned || dd != "" && (fd == dd || strings.HasSuffix(fd, "."+dd)) {
		return nil
	}
	return fmt.Errorf("%w: signing domain %q, From domain %q", ErrDKIMAlignment, d.Domain, fd)
}

func (d *DKIM) sign(msg []byte) ([]byte, error) {
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: d.Domain, Selector: d.Selector, Signer: d.Key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: signedHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("mail: dkim: %w", err)
	}
	return out.Bytes(), nil
}

// LoadDKIMKey reads a DKIM private key from a PEM file: RSA (PKCS #1 or
// PKCS #8) or Ed25519 (PKCS #8).
func LoadDKIMKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("mail: %s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("mail: %s: %w", path, err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("mail: %s: a %T key, not RSA or Ed25519", path, k)
}
