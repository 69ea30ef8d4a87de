package mode6_test

import (
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
)

// BenchmarkParseVars parses a real 345-octet ntpsec 1.2.2 READVAR reply
// (the 360-octet datagram's data) into variables.
func BenchmarkParseVars(b *testing.B) {
	data := reassemble(b, "ntpsec-rv-v4").Data
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		vs, _ := mode6.ParseVars(data)
		if len(vs) != 19 {
			b.Fatal(len(vs))
		}
	}
}

// BenchmarkParseSystemVars parses the same reply into the typed struct.
func BenchmarkParseSystemVars(b *testing.B) {
	data := reassemble(b, "ntpsec-rv-v4").Data
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mode6.ParseSystemVars(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePacket decodes the 360-octet datagram.
func BenchmarkDecodePacket(b *testing.B) {
	_, replies := exchange(b, "ntpsec-rv-v4")
	b.SetBytes(int64(len(replies[0])))
	b.ReportAllocs()
	for b.Loop() {
		var p mode6.Packet
		if err := p.DecodeFromBytes(replies[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReassemble3 reassembles the real 3-fragment ntpsec reply
// (1,008 octets of datagrams) with a reused Reassembler.
func BenchmarkReassemble3(b *testing.B) {
	req, frags := exchange(b, "ntpsec-rv-multifrag")
	var h mode6.Header
	_ = h.UnmarshalBinary(req)
	total := 0
	for _, f := range frags {
		total += len(f)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	var r mode6.Reassembler
	for b.Loop() {
		r.Reset(h.Seq, h.Op)
		for _, f := range frags {
			if err := r.Add(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	if !r.Complete() {
		b.Fatal("incomplete")
	}
}

// BenchmarkReplyBuilder writes the ntpsec system variables as the server
// does, for the simulated server.
func BenchmarkReplyBuilder(b *testing.B) {
	vs, _ := mode6.ParseVars(reassemble(b, "ntpsec-rv-v4").Data)
	var rb mode6.ReplyBuilder
	var pkts [][]byte
	b.ReportAllocs()
	for b.Loop() {
		rb.Reset(mode6.Header{Leap: 3, Version: 2, Response: true, Op: mode6.OpReadVar, Seq: 1, Status: 0xc016})
		rb.PutVars(vs)
		pkts = rb.AppendPackets(pkts[:0], nil)
	}
}

// BenchmarkAppendReadVar builds the `ntpq -c rv` request.
func BenchmarkAppendReadVar(b *testing.B) {
	buf := make([]byte, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = mode6.AppendReadVar(buf[:0], 1, 0)
	}
}
