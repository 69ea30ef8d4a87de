package mode7_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ntpctl/ntpctl/mode7"
)

// Build the 48-octet monlist probe that nmap, masscan and Metasploit send.
func ExampleRequest() {
	req := mode7.NewRequest(mode7.ReqMonGetList1)
	b, err := req.MarshalBinary()
	if err != nil {
		panic(err)
	}
	fmt.Println(len(b), hex.EncodeToString(b[:8]))

	// State-changing requests are refused.
	_, err = mode7.NewRequest(mode7.ReqConfig).MarshalBinary()
	fmt.Println(errors.Is(err, mode7.ErrRequestCode))
	// Output:
	// 48 1700032a00000000
	// true
}

// Tell "monlist disabled" (ntpd ≥ 4.2.7p26 answers INFO_ERR_NODATA) from
// a malformed packet.
func ExamplePacket_DecodeFromBytes() {
	reply, _ := hex.DecodeString("9700032a40000000") // ntpd 4.2.8p18, enable mode7
	var p mode7.Packet
	err := p.DecodeFromBytes(reply)
	var code mode7.InfoErr
	switch {
	case errors.As(err, &code) && code == mode7.InfoErrNoData:
		fmt.Println("monlist disabled:", code.String())
	case err != nil:
		fmt.Println("malformed:", err)
	}

	err = p.DecodeFromBytes(reply[:5])
	fmt.Println(errors.Is(err, mode7.ErrShort))
	// Output:
	// monlist disabled: INFO_ERR_NODATA
	// true
}

// Reassemble a reply whose packets arrive out of order and twice.
func ExampleReassembler() {
	clients := []mode7.MonitorEntry{}
	for i := range 8 {
		clients = append(clients, mode7.MonitorEntry{
			Addr:      netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}),
			LocalAddr: netip.MustParseAddr("198.51.100.1"),
			Port:      123, Mode: 3, Version: 4, Count: uint32(100 - i),
		})
	}
	req := mode7.NewRequest(mode7.ReqMonGetList1)
	pkts, _ := mode7.AppendMonitorReply(nil, req.Header(), clients) // 6 + 2 entries

	var r mode7.Reassembler
	r.ResetFor(req)
	for _, p := range [][]byte{pkts[1], pkts[1], pkts[0]} {
		if err := r.Add(p); err != nil {
			fmt.Println("dropped:", err)
		}
	}
	rep := r.Reply()
	fmt.Println(rep.Complete, rep.Packets, "packets", rep.Bytes, "octets,", len(rep.Entries), "entries")
	for _, e := range rep.Entries[:2] {
		fmt.Println(e.Addr, e.Port, e.LocalAddr, e.Count)
	}
	// Output:
	// dropped: mode7: duplicate sequence number
	// true 3 packets 744 octets, 8 entries
	// 192.0.2.10 123 198.51.100.1 100
	// 192.0.2.11 123 198.51.100.1 99
}

// Decode a single packet's entries without allocating.
func ExamplePacket_Entries() {
	b, _ := hex.DecodeString("9f00032a0001004800000001000000000000000000000003ac110005ac110004" +
		"0000000194db0303000000000000000000000000000000000000000000000000" +
		"00000000000000000000000000000000") // ntpd 4.2.6p5, recorded by zgrab2
	var p mode7.Packet
	if err := p.DecodeFromBytes(b); err != nil {
		panic(err)
	}
	for e, err := range p.Entries() {
		if err != nil {
			panic(err)
		}
		fmt.Printf("%v:%d -> %v count=%d mode=%d v%d\n", e.Addr, e.Port, e.LocalAddr, e.Count, e.Mode, e.Version)
	}
	// Output:
	// 172.17.0.5:38107 -> 172.17.0.4 count=3 mode=3 v3
}
