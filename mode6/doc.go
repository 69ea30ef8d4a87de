// Package mode6 encodes and decodes NTP Mode 6 control messages (ntpq),
// above all READVAR for association 0, the `ntpq -c rv` query behind
// Shadowserver's "NTP Version" report.
//
// The package performs no I/O. It builds read-only requests ([Request],
// [AppendReadVar]), decodes reply fragments ([Packet]), decodes status
// words with ntpq's names ([SystemStatus], [PeerStatus], [ClockStatus]),
// turns error replies into a typed error ([ServerError]), reassembles
// fragments by offset with ntpq's rules ([Reassembler]), parses and writes
// the variable text ([ParseVars], [AppendVars]) and types the system
// variables ([SystemVars]). [ReplyBuilder] writes replies the way ntpd's
// ctl_putdata and ctl_flushpkt do, for simulated servers and tests.
//
// # Wire format
//
// Every Mode 6 packet starts with a 12-octet header (ntp_control.h,
// struct ntp_control; RFC 9327); multi-octet fields are big-endian:
//
//	 octet 0         octet 1         octets 2-3
//	+---+-----+-----+-+-+-+---------+-------------------------------+
//	|LI | VN  |mode6|R|E|M| opcode  |           sequence            |
//	+---+-----+-----+-+-+-+---------+-------------------------------+
//	|            status             |        association ID         |
//	+-------------------------------+-------------------------------+
//	|            offset             |             count             |
//	+-------------------------------+-------------------------------+
//	|  count octets of data (at most 468), zero padding to 4 octets, |
//	|  then, for authenticated replies, key ID and MAC               |
//	+----------------------------------------------------------------+
//
// R marks a response, E an error (the status word then carries the error
// code in its high octet), M says more fragments follow. A reply is cut
// into fragments of at most 468 data octets; offset is where a fragment's
// data belongs in the whole. The READVAR data is text: name=value items
// separated by ", " or ",\r\n", folded at 72 characters.
//
// docs/wire-spec.md in the module's repository (§2) describes the
// opcodes, status and error words, fragmentation and padding, ntpq's
// reassembly rules, the variable text and the system variables of each
// server version in full.
//
// # Hostile input
//
// Lengths come from the buffer: a decoder never reads past count (ntpsec
// leaves stale octets in the padding), the reassembler places fragments by
// offset within a bounded buffer and caps their number, and the text
// parser drops binary junk and repairs a missing separator instead of
// failing. Decoding and request building allocate nothing; parsing a
// whole reply allocates twice.
package mode6
