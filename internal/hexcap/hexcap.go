// Package hexcap reads the project's text captures: the NAME.hex.txt files
// beside each pcap in the shared captures (one "#N t=… SRC -> DST
// payload=N" line per packet, then its UDP payload in hex) and the
// "NAME HEX" vector files in the codecs' testdata. It is for tests.
package hexcap

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Packet is one captured UDP datagram.
type Packet struct {
	Num     int            // packet number in the capture, from 1
	Time    float64        // seconds since the first packet
	Src     netip.AddrPort // sender
	Dst     netip.AddrPort // receiver
	Payload []byte         // UDP payload
}

// Load reads a NAME.hex.txt capture.
func Load(path string) ([]Packet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse parses the text of a NAME.hex.txt capture.
func Parse(data []byte) ([]Packet, error) {
	var pkts []Packet
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "#") {
			p, err := parseHeader(text)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			pkts = append(pkts, p)
			continue
		}
		if len(pkts) == 0 || pkts[len(pkts)-1].Payload != nil {
			return nil, fmt.Errorf("line %d: payload without a header line", line)
		}
		b, err := hex.DecodeString(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		pkts[len(pkts)-1].Payload = b
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, p := range pkts {
		if p.Payload == nil {
			return nil, fmt.Errorf("packet #%d has no payload", p.Num)
		}
	}
	return pkts, nil
}

// parseHeader parses "#N t=S SRC -> DST payload=N".
func parseHeader(s string) (Packet, error) {
	var p Packet
	f := strings.Fields(strings.TrimPrefix(s, "#"))
	if len(f) != 6 || f[3] != "->" || !strings.HasPrefix(f[1], "t=") || !strings.HasPrefix(f[5], "payload=") {
		return p, fmt.Errorf("malformed header %q", s)
	}
	var err error
	if p.Num, err = strconv.Atoi(f[0]); err != nil {
		return p, err
	}
	if p.Time, err = strconv.ParseFloat(f[1][2:], 64); err != nil {
		return p, err
	}
	if p.Src, err = parseAddrPort(f[2]); err != nil {
		return p, err
	}
	if p.Dst, err = parseAddrPort(f[4]); err != nil {
		return p, err
	}
	return p, nil
}

// parseAddrPort takes "1.2.3.4:5", "[::1]:5" and the captures' "::1:5".
func parseAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("malformed address %q", s)
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// LoadVectors reads a "NAME HEX" file; lines starting with # are comments.
func LoadVectors(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want NAME HEX", path, i+1)
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(hx), ""))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		out[name] = b
	}
	return out, nil
}
