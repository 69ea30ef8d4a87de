// Package mode7 encodes and decodes NTP Mode 7 ("private", ntpdc) packets,
// above all REQ_MON_GETLIST_1, the monlist query behind CVE-2013-5211 and
// Shadowserver's "NTP Monitor" report.
//
// The package performs no I/O. It builds requests ([Request]), decodes
// reply datagrams ([Packet]), decodes and encodes every monitor-list item
// layout ntpd ever sent ([MonitorEntry]), reassembles multi-packet replies
// by sequence number ([Reassembler]) and packetises replies the way ntpd
// 4.2.6 does ([AppendMonitorReply]), so that tests and simulated servers
// are built from the same code that decodes.
//
// # Wire format
//
// Every Mode 7 packet starts with an 8-octet header (ntp_request.h, struct
// req_pkt / resp_pkt); all multi-octet fields are big-endian:
//
//	 octet 0         octet 1         octet 2         octet 3
//	+-+-+-----+-----+-+-------------+---------------+---------------+
//	|R|M| VN  |mode7|A|  sequence   | implementation| request code  |
//	+-+-+-----+-----+-+-------------+---------------+---------------+
//	|  err  |  item count (12 bits) |  MBZ  |  item size (12 bits)  |
//	+-------+-----------------------+-------+-----------------------+
//	|  item count × item size octets of data (at most 500)         |
//	+---------------------------------------------------------------+
//
// R marks a response, M says more packets follow, A marks an
// authenticated request. A reply is a train of up to 128 packets numbered
// 0..127; every packet but the last has M set. The err nibble carries
// ntpd's INFO_ERR codes ([InfoErr]); an error reply is the bare header.
//
// A REQ_MON_GETLIST_1 item for implementation 3 is 72 octets
// (struct info_monitor_1):
//
//	 0 avg_int   4 last_int   8 restr   12 count   16 addr (IPv4)
//	20 daddr    24 flags     28 port   30 mode    31 version
//	32 v6_flag (server byte order)     36 unused (stale)
//	40 addr6 (16 octets)               56 daddr6 (16 octets)
//
// Implementation 2 gets the first 32 octets only (IPv4 entries, no
// v6_flag). REQ_MON_GETLIST answers with 48-octet items (24 for
// implementation 2), and pre-2001 servers with 40-octet items (20); see
// [MonitorEntry] for every layout. Facts come from ntpd's ntp_request.h
// and ntp_request.c (4.2.6p5) and ntpdc's ntpdc_ops.c; docs/wire-spec.md
// in the module's repository (§1) describes the header fields, request
// and error codes, limits, packetisation and reassembly rules in full.
//
// # Hostile input
//
// Every length comes from the buffer, never from a header count alone;
// decoders check bounds before every read and return sentinel errors
// ([ErrShort], [ErrLength], …) that callers match with [errors.Is]. The
// decoding paths and request building allocate nothing.
//
// Fields that ntpd never writes (unused1, the IPv4 address of an IPv6
// entry, the IPv6 addresses of an IPv4 entry) carry stale bytes left in
// ntpd's static reply buffer; decoders ignore them and encoders write
// zeros.
package mode7
