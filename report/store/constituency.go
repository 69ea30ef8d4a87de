package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ntpctl/ntpctl/report"
)

// MaxConstituencyFile caps the size of a constituency file.
const MaxConstituencyFile = 16 << 20

// ErrConstituency is wrapped by every error about a constituency file.
var ErrConstituency = errors.New("store: bad constituency file")

// ConstituencyError is an error at one line of a constituency file.
type ConstituencyError struct {
	File string // the file's name, if known
	Line int    // 1-based; 0 when the error is about the whole file
	Err  error
}

func (e *ConstituencyError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	case e.File != "":
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return e.Err.Error()
}

// Unwrap returns the cause; the error also matches [ErrConstituency].
func (e *ConstituencyError) Unwrap() []error { return []error{ErrConstituency, e.Err} }

// Attach says how a constituency's reports are sent by mail.
type Attach string

// The ways to send a report.
const (
	AttachZip Attach = "zip" // the CSV zipped (Shadowserver's default)
	AttachCSV Attach = "csv" // the plain CSV
	AttachURL Attach = "url" // only the download URL
)

// Delivery holds a constituency's delivery options.
type Delivery struct {
	// Attach is how reports are attached; "" means AttachZip.
	Attach Attach `yaml:"attach"`
	// Delta asks for Shadowserver's delta mode: a full report on
	// FullWeekday, only the rows that changed on the other days.
	Delta bool `yaml:"delta"`
	// FullWeekday is the day of the full report in delta mode, "monday" …
	// "sunday"; "" means monday.
	FullWeekday string `yaml:"full_weekday"`
}

// APIKey is a constituency's key for the Reports API: its id and either
// the secret or the path of a file holding it.
type APIKey struct {
	ID         string `yaml:"key"`
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"` // relative to the constituency file
}

// Constituency is one network owner or group of them that gets its own
// reports: a token for file names and report names, what it holds
// (prefixes, AS numbers, countries; a row belongs to it when any matches),
// whom to tell, and how.
type Constituency struct {
	// Name is the report name: letters, digits and '_' (it goes into file
	// names such as 2026-12-01-scan_ntp-NAME.csv).
	Name     string
	Prefixes []netip.Prefix
	ASNs     []uint32
	// Countries are ISO 3166-1 alpha-2 codes, upper case.
	Countries []string
	// Contacts are e-mail addresses (addr-spec only).
	Contacts []string
	API      APIKey
	Delivery Delivery
	// Line is where the constituency starts in its file.
	Line int
}

// Constituencies is a parsed constituency file: the constituencies in
// file order, and an index that maps a row to the ones it belongs to.
// Overlaps are allowed: a host can belong to an AS constituency and a
// national one.
type Constituencies struct {
	List []Constituency

	byPrefix map[netip.Prefix][]int
	bits4    []int // prefix lengths in use, longest first
	bits6    []int
	byASN    map[uint32][]int
	byGeo    map[string][]int
}

// rawFile is the YAML shape of a constituency file.
type rawFile struct {
	Constituencies []yaml.Node `yaml:"constituencies"`
}

type rawConstituency struct {
	Name      string    `yaml:"name"`
	Prefixes  []string  `yaml:"prefixes"`
	ASNs      []string  `yaml:"asns"`
	Countries []string  `yaml:"countries"`
	Contacts  []string  `yaml:"contacts"`
	API       APIKey    `yaml:"api"`
	Delivery  Delivery  `yaml:"delivery"`
	Extra     yaml.Node `yaml:",inline"`
}

// LoadConstituencies reads a constituency file (YAML; see
// [ParseConstituencies]). Errors carry the file name and line.
func LoadConstituencies(path string) (*Constituencies, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ConstituencyError{File: path, Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConstituencyFile+1))
	if err != nil {
		return nil, &ConstituencyError{File: path, Err: err}
	}
	cs, err := ParseConstituencies(data)
	if err != nil {
		var ce *ConstituencyError
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	for i := range cs.List {
		if sf := cs.List[i].API.SecretFile; sf != "" && !filepath.IsAbs(sf) {
			cs.List[i].API.SecretFile = filepath.Join(filepath.Dir(path), sf)
		}
	}
	return cs, nil
}

// ParseConstituencies parses a constituency file:
//
//	constituencies:
//	  - name: example_net            # [A-Za-z0-9_], unique
//	    prefixes: [192.0.2.0/24, 2001:db8::/32]
//	    asns: [64496, AS64497]
//	    countries: [NL]
//	    contacts: [abuse@example.net]
//	    api: {key: "k1", secret_file: example_net.secret}
//	    delivery: {attach: zip, delta: false}
//
// A constituency needs a name and at least one of prefixes, asns or
// countries. Unknown keys, malformed values and duplicate names are
// errors, each a *ConstituencyError with the line it is on.
func ParseConstituencies(data []byte) (*Constituencies, error) {
	if len(data) > MaxConstituencyFile {
		return nil, &ConstituencyError{Err: fmt.Errorf("larger than %d octets", MaxConstituencyFile)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	cs := &Constituencies{}
	if len(doc.Content) == 0 {
		return cs.index(), nil
	}
	var raw rawFile
	if err := decodeStrict(doc.Content[0], &raw); err != nil {
		return nil, err
	}
	seen := map[string]int{}
	for _, n := range raw.Constituencies {
		c, err := parseConstituency(&n)
		if err != nil {
			return nil, err
		}
		if l, dup := seen[strings.ToLower(c.Name)]; dup {
			return nil, &ConstituencyError{Line: n.Line, Err: fmt.Errorf("constituency %q already defined at line %d", c.Name, l)}
		}
		seen[strings.ToLower(c.Name)] = n.Line
		cs.List = append(cs.List, c)
	}
	return cs.index(), nil
}

// decodeStrict decodes n into v, refusing unknown keys.
func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind != yaml.MappingNode {
		return &ConstituencyError{Line: n.Line, Err: errors.New("expected a mapping")}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !knownKey(v, k.Value) {
			return &ConstituencyError{Line: k.Line, Err: fmt.Errorf("unknown key %q", k.Value)}
		}
		if err := checkKnown(v, k.Value, n.Content[i+1]); err != nil {
			return err
		}
	}
	if err := n.Decode(v); err != nil {
		return yamlError(err)
	}
	return nil
}

// knownKey reports whether key is a field of the YAML shape v.
func knownKey(v any, key string) bool {
	var keys []string
	switch v.(type) {
	case *rawFile:
		keys = []string{"constituencies"}
	case *rawConstituency:
		keys = []string{"name", "prefixes", "asns", "countries", "contacts", "api", "delivery"}
	case *APIKey:
		keys = []string{"key", "secret", "secret_file"}
	case *Delivery:
		keys = []string{"attach", "delta", "full_weekday"}
	}
	return slices.Contains(keys, key)
}

// checkKnown checks the keys of the nested mappings of v.
func checkKnown(v any, key string, n *yaml.Node) error {
	var sub any
	switch {
	case key == "api":
		sub = &APIKey{}
	case key == "delivery":
		sub = &Delivery{}
	default:
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &ConstituencyError{Line: n.Line, Err: fmt.Errorf("%s: expected a mapping", key)}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !knownKey(sub, k.Value) {
			return &ConstituencyError{Line: k.Line, Err: fmt.Errorf("unknown key %q in %s", k.Value, key)}
		}
	}
	return nil
}

// yamlError turns a YAML error into a *ConstituencyError, keeping the
// line yaml.v3 names in its message ("yaml: line 3: …").
func yamlError(err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ":"); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, strings.TrimSpace(tail)
			}
		}
	}
	return &ConstituencyError{Line: line, Err: errors.New(msg)}
}

// lineOf returns the line of the i-th item of the sequence under key in
// the mapping n, or n's line.
func lineOf(n *yaml.Node, key string, i int) int {
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key {
			v := n.Content[j+1]
			if i >= 0 && i < len(v.Content) {
				return v.Content[i].Line
			}
			return v.Line
		}
	}
	return n.Line
}

func parseConstituency(n *yaml.Node) (Constituency, error) {
	var raw rawConstituency
	if err := decodeStrict(n, &raw); err != nil {
		return Constituency{}, err
	}
	bad := func(key string, i int, format string, args ...any) error {
		return &ConstituencyError{Line: lineOf(n, key, i), Err: fmt.Errorf(format, args...)}
	}
	c := Constituency{Name: raw.Name, API: raw.API, Delivery: raw.Delivery, Line: n.Line}
	if !IsToken(c.Name) {
		return c, bad("name", -1, "name %q: want 1 to 64 of A-Z, a-z, 0-9 and _", c.Name)
	}
	for i, s := range raw.Prefixes {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(s))
			if aerr != nil || a.Zone() != "" {
				return c, bad("prefixes", i, "prefix %q: not a CIDR prefix or address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Zone() != "" {
			return c, bad("prefixes", i, "prefix %q: has a zone", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			if p.Bits() < 0 {
				return c, bad("prefixes", i, "prefix %q: an IPv4-mapped prefix shorter than ::ffff:0:0/96", s)
			}
		}
		if p.Masked() != p {
			return c, bad("prefixes", i, "prefix %q has host bits set (did you mean %s?)", s, p.Masked())
		}
		c.Prefixes = append(c.Prefixes, p)
	}
	for i, s := range raw.ASNs {
		t := strings.TrimSpace(s)
		if len(t) > 2 && strings.EqualFold(t[:2], "AS") {
			t = t[2:]
		}
		v, err := strconv.ParseUint(t, 10, 32)
		if err != nil || v == 0 || !isDigits(t) {
			return c, bad("asns", i, "AS number %q: want 1 … 4294967295", s)
		}
		c.ASNs = append(c.ASNs, uint32(v))
	}
	for i, s := range raw.Countries {
		t := strings.ToUpper(strings.TrimSpace(s))
		if len(t) != 2 || t[0] < 'A' || t[0] > 'Z' || t[1] < 'A' || t[1] > 'Z' {
			return c, bad("countries", i, "country %q: want an ISO 3166-1 alpha-2 code", s)
		}
		c.Countries = append(c.Countries, t)
	}
	for i, s := range raw.Contacts {
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || strings.ContainsAny(a.Address, "\r\n") {
			return c, bad("contacts", i, "contact %q: want an e-mail address (user@domain)", s)
		}
		c.Contacts = append(c.Contacts, a.Address)
	}
	if len(c.Prefixes)+len(c.ASNs)+len(c.Countries) == 0 {
		return c, bad("name", -1, "constituency %q has no prefixes, asns or countries", c.Name)
	}
	switch c.Delivery.Attach {
	case "", AttachZip, AttachCSV, AttachURL:
	default:
		return c, bad("delivery", -1, "attach %q: want zip, csv or url", c.Delivery.Attach)
	}
	if w := c.Delivery.FullWeekday; w != "" && weekday(w) < 0 {
		return c, bad("delivery", -1, "full_weekday %q: want monday … sunday", w)
	}
	if c.API.Secret != "" && c.API.SecretFile != "" {
		return c, bad("api", -1, "api: secret and secret_file both given")
	}
	if (c.API.Secret != "" || c.API.SecretFile != "") && c.API.ID == "" {
		return c, bad("api", -1, "api: a secret without a key")
	}
	if c.API.ID != "" && (len(c.API.ID) > 128 || strings.ContainsFunc(c.API.ID, func(r rune) bool { return r <= ' ' || r > '~' })) {
		return c, bad("api", -1, "api: key must be 1 to 128 printable ASCII characters")
	}
	return c, nil
}

// weekday returns 0 (sunday) … 6 for a day name, or -1.
func weekday(name string) int {
	days := []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	return slices.Index(days, strings.ToLower(name))
}

// IsToken reports whether s can name a constituency: 1 to 64 of A-Z,
// a-z, 0-9 and '_', the characters Shadowserver's file names allow in
// their last part.
func IsToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// index builds the lookup tables of cs.
func (cs *Constituencies) index() *Constituencies {
	cs.byPrefix = map[netip.Prefix][]int{}
	cs.byASN = map[uint32][]int{}
	cs.byGeo = map[string][]int{}
	for i, c := range cs.List {
		for _, p := range c.Prefixes {
			if !slices.Contains(cs.byPrefix[p], i) {
				cs.byPrefix[p] = append(cs.byPrefix[p], i)
			}
			if p.Addr().Is4() {
				cs.bits4 = append(cs.bits4, p.Bits())
			} else {
				cs.bits6 = append(cs.bits6, p.Bits())
			}
		}
		for _, a := range c.ASNs {
			if !slices.Contains(cs.byASN[a], i) {
				cs.byASN[a] = append(cs.byASN[a], i)
			}
		}
		for _, g := range c.Countries {
			if !slices.Contains(cs.byGeo[g], i) {
				cs.byGeo[g] = append(cs.byGeo[g], i)
			}
		}
	}
	for _, b := range []*[]int{&cs.bits4, &cs.bits6} {
		slices.Sort(*b)
		*b = slices.Compact(*b)
	}
	return cs
}

// Match appends to dst the indexes (into List) of the constituencies a
// row with key k belongs to, in List order, each once.
func (cs *Constituencies) Match(dst []int, k report.Key) []int {
	start := len(dst)
	add := func(is []int) {
		for _, i := range is {
			if !slices.Contains(dst[start:], i) {
				dst = append(dst, i)
			}
		}
	}
	if a := k.IP.Unmap(); a.IsValid() {
		bits := cs.bits6
		if a.Is4() {
			bits = cs.bits4
		}
		for _, b := range bits {
			p, _ := a.WithZone("").Prefix(b)
			add(cs.byPrefix[p])
		}
	}
	if k.ASN != 0 {
		add(cs.byASN[k.ASN])
	}
	if k.Country != "" {
		add(cs.byGeo[strings.ToUpper(k.Country)])
	}
	slices.Sort(dst[start:])
	return dst
}

// Names returns the names of the constituencies a row with key k belongs
// to, in List order.
func (cs *Constituencies) Names(k report.Key) []string {
	var names []string
	for _, i := range cs.Match(nil, k) {
		names = append(names, cs.List[i].Name)
	}
	return names
}

// ByName returns the constituency called name (case-insensitive).
func (cs *Constituencies) ByName(name string) (*Constituency, bool) {
	for i := range cs.List {
		if strings.EqualFold(cs.List[i].Name, name) {
			return &cs.List[i], true
		}
	}
	return nil, false
}

// SecretBytes returns the API secret: Secret, or the content of
// SecretFile with surrounding white space removed.
func (k APIKey) SecretBytes() ([]byte, error) {
	if k.SecretFile == "" {
		return []byte(k.Secret), nil
	}
	b, err := os.ReadFile(k.SecretFile)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b), nil
}

// DeltaOn reports whether the constituency's report of day is a delta
// (only the rows that changed): in delta mode, every day but the full
// report's weekday (Monday unless FullWeekday says otherwise).
func (c *Constituency) DeltaOn(day time.Time) bool {
	if !c.Delivery.Delta {
		return false
	}
	full := time.Monday
	if w := weekday(c.Delivery.FullWeekday); w >= 0 {
		full = time.Weekday(w)
	}
	return day.Weekday() != full
}
