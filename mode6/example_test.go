package mode6_test

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ntpctl/ntpctl/mode6"
)

// Build the request `ntpq -c rv` sends.
func ExampleAppendReadVar() {
	b, err := mode6.AppendReadVar(nil, 1, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println(hex.EncodeToString(b))

	b, _ = mode6.AppendReadVar(nil, 4, 0, "version", "stratum")
	fmt.Println(len(b), string(b[12:27]))
	// Output:
	// 160200010000000000000000
	// 28 version,stratum
}

// Reassemble a reply whose fragments arrive out of order, then parse it.
func ExampleReassembler() {
	frag1, _ := hex.DecodeString("16a100010002000300000009666f6f3d343232332c000000")
	frag2, _ := hex.DecodeString("16a10001000200030009000e626c61683d3234382c783d32332c0000")
	last, _ := hex.DecodeString("168100010002000300170006717575783d310000")

	var r mode6.Reassembler
	r.Reset(1, mode6.OpReadStat)
	for _, b := range [][]byte{last, frag2, frag1, frag2} {
		if err := r.Add(b); err != nil {
			fmt.Println("dropped:", err)
		}
	}
	rep := r.Reply()
	fmt.Println(rep.Complete, rep.Fragments, "fragments,", rep.Bytes, "octets:", string(rep.Data))
	vs, _ := mode6.ParseVars(rep.Data)
	v, _ := vs.Lookup("blah")
	fmt.Println("blah =", v)
	// Output:
	// dropped: mode6: duplicate fragment
	// true 3 fragments, 100 octets: foo=4223,blah=248,x=23,quux=1
	// blah = 248
}

// Tell an error reply from a malformed packet.
func ExamplePacket_DecodeFromBytes() {
	reply, _ := hex.DecodeString("d6c200060400777700000000") // ntpsec, association 0x7777
	var p mode6.Packet
	err := p.DecodeFromBytes(reply)
	var se mode6.ServerError
	if errors.As(err, &se) {
		fmt.Println(se.String(), "for association", p.AssocID)
	}
	// Output:
	// CERR_BADASSOC for association 30583
}

// Type the system variables and read the status word as ntpq prints it.
func ExampleParseSystemVars() {
	text := `version="ntpd 4.2.8p15@1.3728-o Wed Sep 23 11:46:38 UTC 2020 (1)",` + "\r\n" +
		`processor="x86_64", system="Linux/5.10.0", leap=0, stratum=2,` + "\r\n" +
		`rootdisp=12.5, refid=192.0.2.1, reftime=0xdfb39d2d.8598591b, sys_jitter=0.25`
	s, err := mode6.ParseSystemVars([]byte(text))
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Banner.Program, s.Banner.Version, s.Banner.Date.Format("2006-01-02"))
	fmt.Println(s.Stratum, s.RefID.Addr, s.RefTime.Time().Format("2006-01-02 15:04:05"))
	fmt.Println("rootdisp:", s.RootDisp)
	fmt.Println(mode6.SystemStatusOf(0x0615))
	// Output:
	// ntpd 4.2.8p15 2020-09-23
	// 2 192.0.2.1 2018-12-06 13:05:49
	// rootdisp: 12.5
	// leap_none, sync_ntp, 1 event, clock_sync
}

// The MRU list, as `ntpq -c mrulist` fetches it: a nonce first, then
// READ_MRU requests carrying it; each reply's variables decode into a
// page of entries.
func ExampleParseMRU() {
	req := mode6.AppendReqNonce(nil, 1) // sent; the reply's variables:
	_ = req
	vs, _ := mode6.ParseVars([]byte("nonce=9f0e1d2c3b4a5968\r\n"))
	nonce, _ := mode6.ParseNonce(vs)
	q := mode6.MRURequest{Seq: 2, Nonce: nonce, Frags: 32}
	if _, err := q.AppendBinary(nil); err != nil { // sent; the reply:
		fmt.Println(err)
		return
	}
	vs, _ = mode6.ParseVars([]byte("nonce=0a1b2c3d, addr.0=192.0.2.9:123, last.0=0xe2a6b3c0.00000000, " +
		"first.0=0xe2a6b000.00000000, ct.0=3, mv.0=35, rs.0=0x0, last.newest=0xe2a6b3c0.00000000, now=0xe2a6b3c5.00000000\r\n"))
	p, err := mode6.ParseMRU(vs)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range p.Entries {
		fmt.Printf("%s count %d mode %d version %d\n", e.Addr, e.Count, e.Mode, e.Version)
	}
	fmt.Println("complete:", p.Complete, "next nonce:", p.Nonce)
	// Output:
	// 192.0.2.9:123 count 3 mode 3 version 4
	// complete: true next nonce: 0a1b2c3d
}
