// Package ntpctl is a Go SDK and scanner for the NTP control protocols, for
// finding NTP servers that can be abused for reflection DDoS and handing
// the findings to the networks that run them.
//
// Two queries matter. "NTP Monitor" is the Mode 7 REQ_MON_GETLIST_1
// (monlist) query of ntpdc: an open ntpd before 4.2.7p26 answers one small
// request with up to 600 recent clients in up to 100 packets, about 44 kB.
// "NTP Version" is the Mode 6 READVAR query of ntpq: the server answers
// with its system variables (daemon version, OS, stratum, …), about 30
// times the request. These are the two reports Shadowserver publishes
// daily, and ntpctl produces both in the same CSV layouts. Two more
// reports are ntpctl's own, in the same style: the NTP MRU report (the
// Mode 6 REQ_NONCE and READ_MRU walk of ntpq -c mrulist, monlist's
// successor, which shows anyone a server's recent clients) and the
// Accessible NTP report (a Mode 3 client request, which the scanner's
// discovery pass sends first so that the control queries go only to the
// servers that answered).
//
// # Layers
//
//   - [github.com/ntpctl/ntpctl/mode7]: Mode 7 codec: requests, replies,
//     monitor entries in every layout ntpd sent, reassembly by sequence
//     number. No I/O.
//   - [github.com/ntpctl/ntpctl/mode6]: Mode 6 codec: header, fragments, READVAR text, typed system
//     variables. No I/O.
//   - this package: the prober, a batched UDP engine that sends probes to
//     very many targets and turns the datagrams that come back into one
//     result per target, and the target space (prefixes, blocklists,
//     permutation, shards).
//   - enrich: reverse DNS, ASN, geolocation and abuse contacts.
//   - report: Shadowserver's "NTP Version" and "NTP Monitor" CSV, JSON
//     lines, statistics.
//   - examples/scanner, the full scanner, and the ntpctl command, which
//     verifies one host.
//
// # The prober
//
// [Prober] sends one [Probe] to very many targets over ordinary UDP
// sockets (no root, no raw sockets, no spoofing), with batched
// sendmmsg/recvmmsg I/O, and calls back with exactly one [Result] per
// target: an [Outcome] that every probe shares (target, [Status], error,
// time, attempts, RTT, packets, bytes, request bytes) and the probe's
// value, a codec type. [MonList] (Mode 7 monlist) yields a mode7.Reply,
// [ReadVar] (Mode 6 READVAR) a mode6.Reply with its variables parsed,
// [MRUList] an [MRUResult] (an exchange of several requests: a [Stepper]),
// [Client] a [TimePacket] (Mode 3, decoded by [DecodeTimePacket]); the
// engine knows nothing else about the protocols. [Query] probes one host.
//
//   - Targets are pulled from an iter.Seq only when there is room in
//     flight, so a scan of millions of addresses holds at most
//     Config.Concurrency of them.
//   - A datagram counts only when it comes from the probed address and
//     port, arrives on the socket the target's request left from (one of
//     a pool of Config.Sockets, 1024 by default, each on its own random
//     port, picked per target by a keyed hash), and answers this request:
//     Mode 6 replies must echo a sequence number derived per target from
//     a secret key, Mode 7 replies the request's implementation and code.
//     Everything else is counted in [Stats] (unsolicited, late,
//     mismatched, misdirected) and dropped; a target that receives more
//     than Config.MaxMismatched datagrams answering other requests or at
//     other ports ends as [StatusSpoofed], never a finding, and per-target
//     caps bound what a hostile server can make the prober keep.
//   - Outcome.Packets and Outcome.Bytes are the amplification evidence.
//   - Rate is taken per batch from a token bucket; cancelling Run's
//     context stops sending at once and lets the targets in flight finish
//     (Abort finishes them at once).
//   - Each socket has its own sending goroutine, so sendmmsg runs while
//     the next batch is prepared; Config.Senders opens several sockets per
//     family to send on several cores.
//   - The steady state allocates nothing per datagram sent or received.
//
// Inside, an I/O-free engine keeps the flights (the targets in flight),
// their timers, the rules for retrying and finishing them, the matching
// of datagrams to them and the counters, driven by values and a clock; a
// transport moves the datagrams (sockets, batches, sending and receiving
// goroutines); Run is the loop between them.
//
// # The target space
//
// [TargetSet] holds addresses, prefixes and ranges of both families
// (files and IPv6 hitlists through ReadFrom); [Blocklist] keeps the IANA
// special-purpose ranges and loopback out unless asked, and reads zmap's
// blocklist and allowlist files; [TargetSet.Permuted] orders a scan by a
// seeded cyclic group the way zmap does and splits it into disjoint shards.
//
// The prober uses Linux's recvmmsg and sendmmsg (other Unix systems fall
// back to one datagram per call).
//
// # Where to start
//
// To decode traffic you already have, start with the codecs. To scan,
// start with the scanner in examples/scanner, which runs a lab of
// simulated servers on loopback when given no arguments.
//
// Scan only networks you are allowed to scan. The scanner keeps reserved
// address ranges out by default, never spoofs source addresses, and sends
// only read-only queries.
package ntpctl
