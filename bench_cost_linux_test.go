package ntpctl_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/batchconn"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

// costServersEnv names the CPU the helper process of BenchmarkCost pins
// itself to; unset, TestHelperCostServers skips.
const costServersEnv = "NTPCTL_COST_SERVERS_CPU"

// costHost is the host every simulated address answers as, the same one
// BenchmarkScan uses: monlist gets INFO_ERR_NODATA (ntpd 4.2.8 with
// "enable mode7"), READVAR ntpsec 1.2.2's system variables.
func costHost() *ntpsim.Host {
	return &ntpsim.Host{Mode7: ntpsim.Mode7NoData, Mode6: ntpsim.Mode6NTPsec, Status: 0x0615,
		System: ntpsim.NTPsecVars(ntpsim.SystemInfo{Version: "ntpd ntpsec-1.2.2", Stratum: 2, RefID: "192.0.2.1"})}
}

// TestHelperCostServers is the helper process of BenchmarkCost: pinned to
// one CPU, it runs the simulated servers on the wildcard address (they
// answer only what is sent to them, from loopback in the benchmark),
// prints "port=N" and serves until its standard input closes, printing
// "stats requests replies failed-writes" for each line it reads.
func TestHelperCostServers(t *testing.T) {
	cpu, err := strconv.Atoi(os.Getenv(costServersEnv))
	if err != nil {
		t.Skip("helper process for BenchmarkCost")
	}
	if _, err := pinProcess(cpu); err != nil {
		t.Fatal(err)
	}
	s, err := ntpsim.Start(context.Background(), "udp4", "0.0.0.0:0", ntpsim.Config{Default: costHost()})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("port=%d\n", s.Port())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() { // each line asks for the counters
		st := s.Stats()
		fmt.Printf("stats %d %d %d\n", st.Requests, st.Replies, st.Errors)
	}
	s.Close()
}

// pinProcess restricts every thread of the process to cpu and sets
// GOMAXPROCS to 1, as if the process had been started under
// `taskset -c cpu`; restore undoes both. sched_setaffinity with pid 0
// changes only the calling thread, and the Go runtime has several
// threads already, so each thread of /proc/self/task is set by its id;
// threads created later inherit the mask of the thread that creates
// them. A thread that appears while the list is read may have been
// cloned from one not yet pinned, so the pass repeats until one finds
// every thread pinned already.
func pinProcess(cpu int) (restore func(), err error) {
	var old, want unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, err
	}
	want.Set(cpu)
	procs := runtime.GOMAXPROCS(1)
	if err := setAllThreads(&want); err != nil {
		runtime.GOMAXPROCS(procs)
		return nil, err
	}
	return func() {
		_ = setAllThreads(&old)
		runtime.GOMAXPROCS(procs)
	}, nil
}

func setAllThreads(set *unix.CPUSet) error {
	for pass := 0; pass < 100; pass++ {
		tids, err := threads()
		if err != nil {
			return err
		}
		changed := false
		for _, tid := range tids {
			var cur unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &cur); err != nil {
				continue // the thread has exited
			}
			if cur == *set {
				continue
			}
			changed = true
			if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setaffinity of thread %d: %w", tid, err)
			}
		}
		if !changed {
			return nil
		}
	}
	return errors.New("threads keep appearing with another CPU mask")
}

// unpinned counts the process's threads whose mask is not set.
func unpinned(set *unix.CPUSet) int {
	tids, _ := threads()
	n := 0
	for _, tid := range tids {
		var cur unix.CPUSet
		if unix.SchedGetaffinity(tid, &cur) == nil && cur != *set {
			n++
		}
	}
	return n
}

func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// cpuTime returns the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// skMeminfoDrops is SK_MEMINFO_DROPS of linux/sock_diag.h: the index of
// sk_drops in what getsockopt(SO_MEMINFO) returns.
const skMeminfoDrops = 8

// socketDrops returns the socket's drop counter, sk_drops: the counter
// that SO_RXQ_OVFL reports in a control message with each datagram
// received, read here with getsockopt(SO_MEMINFO) so that the count is
// known also when no datagram follows the last drop.
func socketDrops(fd int) (uint64, error) {
	var info [16]uint32 // SK_MEMINFO_VARS is 9 today; the kernel writes at most len
	l := uint32(unsafe.Sizeof(info))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	if l < (skMeminfoDrops+1)*4 {
		return 0, fmt.Errorf("SO_MEMINFO returned %d octets", l)
	}
	return uint64(info[skMeminfoDrops]), nil
}

// dropWatch keeps a duplicate of every socket the prober opens (through
// Config.ListenUDP), with SO_RXQ_OVFL set, so that their drop counters
// can be read after the prober has closed its descriptors.
type dropWatch struct {
	mu  sync.Mutex
	fds []int
}

func (w *dropWatch) listen(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	var dup int
	var derr error
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
		dup, derr = unix.Dup(int(fd))
	})
	if derr != nil {
		c.Close()
		return nil, derr
	}
	w.mu.Lock()
	w.fds = append(w.fds, dup)
	w.mu.Unlock()
	return c, nil
}

// drops sums the sockets' drop counters and closes the duplicates.
func (w *dropWatch) drops() (sum uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, fd := range w.fds {
		n, e := socketDrops(fd)
		sum += n
		err = errors.Join(err, e)
		unix.Close(fd)
	}
	w.fds = nil
	return sum, err
}

// udpDrops returns the drops column of /proc/net/udp for the IPv4 socket
// bound to port: the simulated servers' socket, in the helper process.
func udpDrops(port uint16) uint64 {
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		return 0
	}
	defer f.Close()
	suffix := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	var sum uint64
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 13 || !strings.HasSuffix(fs[1], suffix) {
			continue
		}
		n, _ := strconv.ParseUint(fs[len(fs)-1], 10, 64)
		sum += n
	}
	return sum
}

// costBed is the helper process running the simulated servers.
type costBed struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	port  uint16
	out   *bufio.Scanner
}

// stats returns the servers' counters: requests received, replies sent,
// replies the kernel refused.
func (bed *costBed) stats(b *testing.B) (requests, replies, errs uint64) {
	if _, err := io.WriteString(bed.stdin, "\n"); err != nil {
		b.Fatal(err)
	}
	if !bed.out.Scan() {
		b.Fatal("the helper process stopped")
	}
	if _, err := fmt.Sscanf(bed.out.Text(), "stats %d %d %d", &requests, &replies, &errs); err != nil {
		b.Fatalf("helper: %q: %v", bed.out.Text(), err)
	}
	return
}

func startCostBed(b *testing.B, cpu int) *costBed {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCostServers$")
	cmd.Env = append(os.Environ(), costServersEnv+"="+strconv.Itoa(cpu))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	bed := &costBed{cmd: cmd, stdin: stdin}
	b.Cleanup(bed.stop)
	sc := bufio.NewScanner(stdout)
	bed.out = sc
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "port="); ok {
			p, _ := strconv.ParseUint(v, 10, 16)
			bed.port = uint16(p)
			break
		}
	}
	if bed.port == 0 {
		b.Fatal("the helper process printed no port")
	}
	return bed
}

func (bed *costBed) stop() {
	if bed.stdin != nil {
		bed.stdin.Close()
		bed.stdin = nil
		_ = bed.cmd.Wait()
	}
}

// BenchmarkCost measures the prober's own CPU time per answered target,
// with the simulated servers in a helper process (this test binary run
// again) pinned to the second CPU, and this process pinned to the first,
// GOMAXPROCS 1. Each iteration scans the 2^16 targets of 127.64.0.0/16
// four ways, interleaved so that a shared machine's drift stays out of
// the ratios, and takes each one's rusage (user + system) delta:
//
//   - prober: ntpctl.Prober with BenchmarkScan's Config (1024 sockets),
//     and again with Sockets 1 (prober-1sock), zmap's one port;
//   - naive: a goroutine and a connected socket per target, 1024 at a time
//     (BenchmarkNaive, zgrab2's design), decoding the reply the same way;
//   - floor: one socket, a raw sendmmsg and recvmmsg loop over the same
//     datagrams with the same 8192 requests in flight, nothing decoded.
//
// The kernel's loopback delivery of a datagram is charged to the
// sender's CPU time, so each figure includes delivering its requests to
// the servers' socket (and the helper's, delivering the replies).
// x-naive is naive/prober and x-floor prober/floor, both per answered
// target. drops is the sum over all runs of the prober's sockets' drop
// counters (sk_drops, the counter SO_RXQ_OVFL reports; set on each of
// them through Config.ListenUDP), 1sock-drops the one-socket prober's,
// floor-drops the floor socket's; bed-drops
// the servers' socket's (/proc/net/udp), where a request that found the
// servers' queue full is lost. With -cpuprofile, `go tool pprof
// -tagfocus 'path=prober$'` shows where the prober's time goes.
func BenchmarkCost(b *testing.B) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		b.Skip(err)
	}
	var cpus []int
	for i := 0; i < len(all)*64 && len(cpus) < 2; i++ {
		if all.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) < 2 {
		b.Skip("needs two CPUs: one for the prober, one for the simulated servers")
	}
	bed := startCostBed(b, cpus[1])
	restore, err := pinProcess(cpus[0])
	if err != nil {
		b.Fatal(err)
	}
	defer restore()
	var mine unix.CPUSet
	mine.Set(cpus[0])

	targets := targets16(bed.port)
	for _, probe := range []string{"monlist-nodata", "readvar"} {
		b.Run(probe, func(b *testing.B) {
			var prober, prober1, naive, floor costRun
			for b.Loop() {
				runtime.GC()
				prober.add(costProber(b, probe, targets, bed, 0))
				runtime.GC()
				prober1.add(costProber(b, probe, targets, bed, 1))
				runtime.GC()
				naive.add(costNaive(b, probe, targets, bed))
				runtime.GC()
				floor.add(costFloor(b, probe, targets, bed))
			}
			if n := unpinned(&mine); n > 0 {
				b.Logf("%d threads were not pinned to CPU %d", n, cpus[0])
			}
			p, nv, f := prober.perTarget(), naive.perTarget(), floor.perTarget()
			b.ReportMetric(p, "prober-µs/target")
			b.ReportMetric(nv, "naive-µs/target")
			b.ReportMetric(f, "floor-µs/target")
			b.ReportMetric(prober1.perTarget(), "prober-1sock-µs/target")
			b.ReportMetric(nv/p, "x-naive")
			b.ReportMetric(p/f, "x-floor")
			b.ReportMetric(float64(prober.drops), "drops")
			b.ReportMetric(float64(prober1.drops), "1sock-drops")
			b.ReportMetric(float64(floor.drops), "floor-drops")
			b.ReportMetric(float64(prober.bedDrops+prober1.bedDrops+naive.bedDrops+floor.bedDrops), "bed-drops")
			var bedErrors uint64
			for i, r := range []*costRun{&prober, &prober1, &naive, &floor} {
				bedErrors += r.bedErrors
				if r.bedRequests != r.total {
					b.Logf("%s: the servers received %d of its %d requests and sent %d replies",
						[...]string{"prober", "prober-1sock", "naive", "floor"}[i], r.bedRequests, r.total, r.bedReplies)
				}
			}
			b.ReportMetric(float64(bedErrors), "bed-write-errors")
			b.ReportMetric(prober.loss(), "prober-loss%")
			b.ReportMetric(naive.loss(), "naive-loss%")
			b.ReportMetric(floor.loss(), "floor-loss%")
		})
	}
}

// costWait is how long each path waits for a reply. The machine may be
// shared and the helper process wait its turn for long; waiting costs
// no CPU time, so the wait is long.
const costWait = 2 * time.Second

// costRun adds up the runs of one path.
type costRun struct {
	cpu             time.Duration
	answered, total uint64
	drops, bedDrops uint64
	// what the servers counted: requests received, replies sent, replies
	// the kernel refused
	bedRequests, bedReplies, bedErrors uint64
}

func (r *costRun) add(o costRun) {
	r.cpu += o.cpu
	r.answered += o.answered
	r.total += o.total
	r.drops += o.drops
	r.bedDrops += o.bedDrops
	r.bedRequests += o.bedRequests
	r.bedReplies += o.bedReplies
	r.bedErrors += o.bedErrors
}

func (r *costRun) perTarget() float64 {
	return float64(r.cpu.Microseconds()) / float64(max(r.answered, 1))
}

func (r *costRun) loss() float64 {
	return 100 * float64(r.total-r.answered) / float64(max(r.total, 1))
}

// measure runs f and fills in the CPU time it took and the servers'
// counters meanwhile. f and the goroutines it starts carry the profiler
// label path=path, so that with -cpuprofile `go tool pprof -tagfocus
// path=prober` shows the prober's cost alone.
func measure(b *testing.B, bed *costBed, path string, f func() costRun) costRun {
	drops := udpDrops(bed.port)
	req, rep, errs := bed.stats(b)
	start := cpuTime()
	var r costRun
	pprof.Do(context.Background(), pprof.Labels("path", path), func(context.Context) { r = f() })
	r.cpu = cpuTime() - start
	r.bedDrops = udpDrops(bed.port) - drops
	req2, rep2, errs2 := bed.stats(b)
	r.bedRequests, r.bedReplies, r.bedErrors = req2-req, rep2-rep, errs2-errs
	return r
}

func costProber(b *testing.B, probe string, targets []netip.AddrPort, bed *costBed, sockets int) costRun {
	var w dropWatch
	cfg := ntpctl.Config{Blocklist: &ntpctl.Blocklist{AllowLoopback: true}, Concurrency: 8192,
		Timeout: costWait, Quiet: 50 * time.Millisecond, Sockets: sockets, ListenUDP: w.listen}
	name := "prober"
	if sockets == 1 {
		name = "prober-1sock"
	}
	r := measure(b, bed, name, func() costRun {
		var sent uint64
		var answered uint64
		if probe == "readvar" {
			answered = scanOnce(b, cfg, ntpctl.ReadVar(), targets, &sent)
		} else {
			answered = scanOnce(b, cfg, ntpctl.MonList(), targets, &sent)
		}
		return costRun{answered: answered, total: uint64(len(targets))}
	})
	d, err := w.drops()
	if err != nil {
		b.Fatal(err)
	}
	r.drops = d
	return r
}

// costRequest returns the request of the probe, for the naive and floor
// paths (the floor sends every target the same one).
func costRequest(probe string, seq uint16) []byte {
	if probe == "readvar" {
		req, _ := mode6.Request{Op: mode6.OpReadVar, Seq: seq}.MarshalBinary()
		return req
	}
	req, _ := mode7.NewRequest(mode7.ReqMonGetList1).MarshalBinary()
	return req
}

// costNaive is BenchmarkNaive's path for either probe: a goroutine and a
// connected socket per target, 1024 at a time, each reply reassembled and
// decoded as the prober's assemblers do.
func costNaive(b *testing.B, probe string, targets []netip.AddrPort, bed *costBed) costRun {
	return measure(b, bed, "naive", func() costRun {
		var mu sync.Mutex
		var answered uint64
		sem := make(chan struct{}, 1024)
		var wg sync.WaitGroup
		for i, t := range targets {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(t))
				if err != nil {
					return
				}
				defer c.Close()
				seq := uint16(i) | 1
				_, _ = c.Write(costRequest(probe, seq))
				_ = c.SetReadDeadline(time.Now().Add(costWait))
				buf := make([]byte, 600)
				var r interface {
					Add([]byte) error
					Done() bool
				}
				var six mode6.Reassembler
				var seven mode7.Reassembler
				if probe == "readvar" {
					six.Reset(seq, mode6.OpReadVar)
					r = &six
				} else {
					seven.ResetFor(mode7.NewRequest(mode7.ReqMonGetList1))
					r = &seven
				}
				ok := false
				for !r.Done() {
					n, err := c.Read(buf)
					if err != nil {
						break
					}
					_ = r.Add(buf[:n])
					ok = true
				}
				if probe == "readvar" {
					_ = six.Reply()
				} else {
					_ = seven.Reply()
				}
				if ok {
					mu.Lock()
					answered++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return costRun{answered: answered, total: uint64(len(targets))}
	})
}

// mmsghdr is struct mmsghdr: Go pads it to Msghdr's alignment as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// costFloor is the kernel floor: one socket, raw sendmmsg calls of 64
// datagrams and recvmmsg calls (batchconn's Reader) of up to 64, with at
// most 8192 requests in flight, replies counted and not looked at.
func costFloor(b *testing.B, probe string, targets []netip.AddrPort, bed *costBed) costRun {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	rc, err := c.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var dup int
	// The one socket must queue a whole window of replies, as the
	// prober's 1024 do between them: 8192 READVAR replies take about
	// 10 MiB of buffer (their truesize), more than rmem_max allows
	// without CAP_NET_ADMIN; without it the window shrinks.
	var forced error
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
		forced = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		dup, err = unix.Dup(int(fd))
	})
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(dup)

	const batch = 64
	window := 8192
	if forced != nil {
		window = 2048
	}
	req := costRequest(probe, 1)
	var (
		hdrs  [batch]mmsghdr
		iovs  [batch]unix.Iovec
		names [batch]unix.RawSockaddrInet4
	)
	for i := range hdrs {
		iovs[i].Base = unsafe.SliceData(req)
		iovs[i].SetLen(len(req))
		names[i].Family = unix.AF_INET
		hdrs[i].hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&names[i])), Namelen: unix.SizeofSockaddrInet4,
			Iov: &iovs[i], Iovlen: 1}
	}
	var count, sent int
	var werr unix.Errno
	write := func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdrs[sent])), uintptr(count-sent), 0, 0, 0)
		switch e {
		case unix.EINTR:
			return false
		case unix.EAGAIN:
			return false
		case 0:
			sent += int(r)
			return sent == count
		}
		werr = e
		return true
	}
	rd := batchconn.New(c).NewReader(batch)
	for i := range rd.Msgs() {
		rd.Msgs()[i].Buf = make([]byte, 600)
	}

	r := measure(b, bed, "floor", func() costRun {
		var answered uint64
		next, inflight := 0, 0
		var armed time.Time
		for {
			for inflight < window && next < len(targets) {
				count, sent = min(batch, len(targets)-next, window-inflight), 0
				for j := range count {
					t := targets[next+j]
					names[j].Addr = t.Addr().As4()
					binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&names[j].Port))[:], t.Port())
				}
				if err := rc.Write(write); err != nil || werr != 0 {
					b.Fatal(err, werr)
				}
				next += count
				inflight += count
			}
			if now := time.Now(); now.Sub(armed) > 100*time.Millisecond {
				_ = c.SetReadDeadline(now.Add(costWait)) // costWait less up to 100 ms of silence ends the run
				armed = now
			}
			n, err := rd.Read()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // the rest was lost
				}
				b.Fatal(err)
			}
			answered += uint64(n)
			inflight -= n
			if next == len(targets) && inflight <= 0 {
				break
			}
		}
		return costRun{answered: answered, total: uint64(len(targets))}
	})
	d, err := socketDrops(dup)
	if err != nil {
		b.Fatal(err)
	}
	r.drops = d
	return r
}
