package mode6_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
)

func TestReqNonce(t *testing.T) {
	b := mode6.AppendReqNonce(nil, 0x1234)
	if len(b) != mode6.HeaderLen {
		t.Fatalf("%d octets", len(b))
	}
	var h mode6.Header
	if err := h.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if h.Op != mode6.OpReqNonce || h.Seq != 0x1234 || h.Version != 2 || h.Count != 0 || h.Response {
		t.Errorf("header %+v", h)
	}
	vs, _ := mode6.ParseVars([]byte("nonce=f2e9d6f4e0e3d7a4b0c1d2e3\r\n"))
	if n, err := mode6.ParseNonce(vs); err != nil || n != "f2e9d6f4e0e3d7a4b0c1d2e3" {
		t.Errorf("nonce %q, %v", n, err)
	}
	for _, data := range []string{"", "nonces=1", `nonce="a b"`, "nonce="} {
		vs, _ := mode6.ParseVars([]byte(data))
		if _, err := mode6.ParseNonce(vs); !errors.Is(err, mode6.ErrMRUReply) {
			t.Errorf("%q: %v", data, err)
		}
	}
}

// TestMRURequest: the variable list as ntpq sends it, first request and
// a later one with the newest entries it has.
func TestMRURequest(t *testing.T) {
	q := mode6.MRURequest{Seq: 7, Nonce: "0123abcd", Frags: 32, Recent: 100}
	b, err := q.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "nonce=0123abcd, frags=32, recent=100"
	if got := string(b[mode6.HeaderLen : mode6.HeaderLen+len(want)]); got != want {
		t.Errorf("data %q, want %q", got, want)
	}
	if n := binary.BigEndian.Uint16(b[10:12]); int(n) != len(want) || len(b)%4 != 0 || q.DataLen() != len(want) {
		t.Errorf("count %d, length %d, DataLen %d", n, len(b), q.DataLen())
	}
	var h mode6.Header
	if err := h.UnmarshalBinary(b); err != nil || h.Op != mode6.OpReadMRU || h.Seq != 7 {
		t.Errorf("header %+v, %v", h, err)
	}
	q = mode6.MRURequest{Nonce: "n1", Limit: 1, MinCount: 2, MaxLstInt: 3600, LocalAddr: netip.MustParseAddr("192.0.2.1"),
		ResAny: 0x1c0, Known: []mode6.MRUKey{
			{Addr: netip.MustParseAddrPort("198.51.100.7:123"), Last: 0xe2a6b3c412345678},
			{Addr: netip.MustParseAddrPort("[2001:db8::5]:51234"), Last: 0xe2a6b3c000000001},
		}}
	b, err = q.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	want = "nonce=n1, limit=1, mincount=2, maxlstint=3600, laddr=192.0.2.1, resany=0x1c0, " +
		"addr.0=198.51.100.7:123, last.0=0xe2a6b3c4.12345678, addr.1=[2001:db8::5]:51234, last.1=0xe2a6b3c0.00000001"
	if got := string(b[mode6.HeaderLen : mode6.HeaderLen+len(want)]); got != want {
		t.Errorf("data %q\nwant %q", got, want)
	}
	for _, bad := range []mode6.MRURequest{
		{Frags: 1},                         // no nonce
		{Nonce: "a,b", Frags: 1},           // a nonce a list cannot carry
		{Nonce: "n"},                       // neither frags nor limit
		{Nonce: "n", Frags: -1, Limit: 2},  // negative
		{Nonce: "n", Frags: 1, Recent: -1}, // negative
		{Nonce: "n", Frags: 1, Known: []mode6.MRUKey{{}}},
	} {
		if _, err := bad.AppendBinary(nil); !errors.Is(err, mode6.ErrMRURequest) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	long := mode6.MRURequest{Nonce: "n", Frags: 1}
	for range 20 {
		long.Known = append(long.Known, mode6.MRUKey{Addr: netip.MustParseAddrPort("[2001:db8::1234:5678]:65535"), Last: 1})
	}
	if _, err := long.AppendBinary(nil); !errors.Is(err, mode6.ErrLength) || long.DataLen() <= mode6.MaxDataLen {
		t.Errorf("a list of %d octets: %v", long.DataLen(), err)
	}
}

// mruReply is a reply as ntpsec shapes it: the nonce, the entries oldest
// first, noise tags between them, last.newest and now.
const mruReply = "nonce=9f0e1d2c3b4a5968, addr.0=192.0.2.9:123, last.0=0xe2a6b3c0.00000000,\r\n" +
	"first.0=0xe2a6b000.00000000, ct.0=3, mv.0=35, rs.0=0x0, qzx=1, addr.1=[2001:db8::7]:40000,\r\n" +
	"last.1=0xe2a6b3c4.80000000, first.1=0xe2a6b3c4.80000000, ct.1=1, mv.1=27, rs.1=0x1c0, kpw,\r\n" +
	"last.newest=0xe2a6b3c4.80000000, now=0xe2a6b3c5.00000000\r\n"

func TestParseMRU(t *testing.T) {
	vs, _ := mode6.ParseVars([]byte(mruReply))
	p, err := mode6.ParseMRU(vs)
	if err != nil {
		t.Fatal(err)
	}
	want := mode6.MRUPage{Nonce: "9f0e1d2c3b4a5968", Entries: []mode6.MRUEntry{
		{Addr: netip.MustParseAddrPort("192.0.2.9:123"), Last: 0xe2a6b3c000000000, First: 0xe2a6b00000000000, Count: 3, Mode: 3, Version: 4},
		{Addr: netip.MustParseAddrPort("[2001:db8::7]:40000"), Last: 0xe2a6b3c480000000, First: 0xe2a6b3c480000000, Count: 1, Mode: 3,
			Version: 3, Restrict: 0x1c0},
	}, Now: 0xe2a6b3c500000000, Complete: true, LastNewest: 0xe2a6b3c480000000, Ignored: 2}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
	// The variables in any order give the same entries.
	rev := make(mode6.Vars, len(vs))
	for i := range vs {
		rev[len(vs)-1-i] = vs[i]
	}
	if q, err := mode6.ParseMRU(rev); err != nil || !reflect.DeepEqual(q, want) {
		t.Errorf("reversed: %+v, %v", q, err)
	}
	// A later reply of a walk: older, no now.
	vs, _ = mode6.ParseVars([]byte("nonce=ab, addr.older=192.0.2.9:123, last.older=0xe2a6b3c0.00000000, addr.0=192.0.2.10:123, last.0=0x1.2"))
	p, err = mode6.ParseMRU(vs)
	if err != nil || !p.HasOlder || p.Older.Addr.String() != "192.0.2.9:123" || p.Complete || len(p.Entries) != 1 {
		t.Errorf("%+v, %v", p, err)
	}
	for _, bad := range []string{
		"addr.0=192.0.2.1:123",                          // no last
		"last.0=0x1.0",                                  // no address
		"addr.0=192.0.2.1, last.0=0x1.0",                // no port
		"addr.0=192.0.2.1:123, last.0=tomorrow",         // bad time
		"addr.0=192.0.2.1:123, last.0=0x1.0, ct.0=-1",   // bad count
		"addr.0=192.0.2.1:123, last.0=0x1.0, mv.0=300",  // bad mode
		"addr.0=192.0.2.1:123, last.0=0x1.0, rs.0=0xzz", // bad mask
		"addr.0=192.0.2.1:123, addr.0=192.0.2.2:123",    // an index twice
		"addr.01=192.0.2.1:123, last.01=0x1.0",          // not an index
		"addr.older=192.0.2.1:123",                      // older without its time
		"addr.0=[fe80::1%eth0]:123, last.0=0x1.0",       // a zone
		"now=soon",                             // bad time
		`nonce="a b"`,                          // a nonce a request cannot carry back
		"addr.-1=192.0.2.1:123, last.-1=0x1.0", // negative
		"addr.99999999999999999999=192.0.2.1:123, last.0=1", // overflow
	} {
		vs, _ := mode6.ParseVars([]byte(bad))
		if _, err := mode6.ParseMRU(vs); !errors.Is(err, mode6.ErrMRUReply) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzParseMRU: any reply text either fails with ErrMRUReply or gives a
// page that, written back as ntpsec writes it, parses to the same page.
func FuzzParseMRU(f *testing.F) {
	f.Add([]byte(mruReply))
	f.Add([]byte("nonce=ab, addr.older=192.0.2.9:123, last.older=0xe2a6b3c0.00000000, addr.0=192.0.2.10:123, last.0=0x1.2"))
	f.Add([]byte("addr.3=[::ffff:192.0.2.1]:1, last.3=0.0, mv.3=255, now=0x0.0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vs, _ := mode6.ParseVars(data)
		p, err := mode6.ParseMRU(vs)
		if err != nil {
			if !errors.Is(err, mode6.ErrMRUReply) {
				t.Fatalf("error %v is not ErrMRUReply", err)
			}
			return
		}
		if len(p.Entries) > mode6.MaxMRUEntries {
			t.Fatalf("%d entries", len(p.Entries))
		}
		text := mode6.AppendVars(nil, mode6.AppendMRUVars(nil, &p))
		back, _ := mode6.ParseVars(text)
		q, err := mode6.ParseMRU(back)
		if err != nil {
			t.Fatalf("%q written back as %q: %v", data, text, err)
		}
		p.Ignored = 0
		if len(p.Entries) == 0 {
			p.LastNewest = 0 // written only with entries
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("%q:\n%+v\nwritten back as %q:\n%+v", data, p, text, q)
		}
	})
}

// FuzzMRURequest: a request either is refused or encodes a variable list
// that the server's parser reads back as the fields.
func FuzzMRURequest(f *testing.F) {
	f.Add("0123abcd", 32, 0, 0, 100, uint32(0), "198.51.100.7:123", uint64(0xe2a6b3c412345678))
	f.Fuzz(func(t *testing.T, nonce string, frags, limit, mincount, maxlstint int, resany uint32, addr string, last uint64) {
		q := mode6.MRURequest{Nonce: nonce, Frags: frags, Limit: limit, MinCount: mincount, MaxLstInt: maxlstint, ResAny: resany}
		if a, err := netip.ParseAddrPort(addr); err == nil {
			q.Known = []mode6.MRUKey{{Addr: a, Last: mode6.Timestamp(last)}}
		}
		b, err := q.AppendBinary(nil)
		if err != nil {
			if !errors.Is(err, mode6.ErrMRURequest) && !errors.Is(err, mode6.ErrLength) {
				t.Fatalf("error %v", err)
			}
			if len(b) != 0 {
				t.Fatalf("%d octets appended on an error", len(b))
			}
			return
		}
		var h mode6.Header
		if err := h.UnmarshalBinary(b); err != nil || h.Op != mode6.OpReadMRU || len(b)%4 != 0 ||
			int(h.Count) > mode6.MaxDataLen || len(b) < mode6.HeaderLen+int(h.Count) {
			t.Fatalf("header %+v of %d octets: %v", h, len(b), err)
		}
		data := b[mode6.HeaderLen : mode6.HeaderLen+int(h.Count)]
		vs, st := mode6.ParseVars(data)
		if st != (mode6.ParseStats{}) {
			t.Fatalf("%q: %+v", data, st)
		}
		if v, _ := vs.Lookup("nonce"); v != nonce {
			t.Fatalf("nonce %q, want %q", v, nonce)
		}
		if len(q.Known) == 1 {
			a, _ := vs.Lookup("addr.0")
			l, _ := vs.Lookup("last.0")
			ts, err := mode6.ParseTimestamp(l)
			if a != netip.AddrPortFrom(q.Known[0].Addr.Addr().WithZone(""), q.Known[0].Addr.Port()).String() || err != nil || uint64(ts) != last {
				t.Fatalf("known entry %q %q", a, l)
			}
		}
	})
}
