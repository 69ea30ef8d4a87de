package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl/report"
	"golang.org/x/term"
)

// progress shows how the scan goes on stderr: a bar on a terminal, plain
// lines now and then otherwise.
type progress struct {
	s     *scan
	start time.Time  // of the scan proper, setup done
	total int64      // the targets of the probes that take every target
	given int64      // the targets given so far to the probes fed by others
	width int        // of the terminal; 0 when unknown
	drawn int        // columns of the bar on the screen now; 0 when none
	mu    sync.Mutex // serialises writes to stderr
	quit  chan struct{}
	done  sync.WaitGroup
	once  sync.Once
}

func newProgress(s *scan) *progress {
	p := &progress{s: s, start: time.Now(), quit: make(chan struct{})}
	for _, pr := range s.probes {
		if pr.input() == nil {
			// A probe fed by another (-discover, the MRU list) takes
			// only the targets that answered it: the bar counts the
			// probes that take every target.
			p.total += int64(s.size)
		}
	}
	mode := s.opts.progress
	if mode == "auto" {
		mode = "lines"
		if f, ok := s.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	if f, ok := s.stderr.(*os.File); ok && mode == "bar" {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			p.width = w
		}
	}
	if p.total <= 0 {
		mode = "none" // nothing to count (an empty shard)
	}
	if s.opts.onProgress != nil {
		p.loop(s.opts.progressPeriod, p.report)
	}
	switch mode {
	case "bar":
		p.loop(200*time.Millisecond, p.drawBar)
	case "lines":
		p.loop(s.opts.progressPeriod, p.line)
	}
	return p
}

func (p *progress) loop(every time.Duration, f func()) {
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.mu.Lock()
				f()
				p.mu.Unlock()
			}
		}
	}()
}

// counts returns the results emitted, targets that replied, requests
// that could not be sent, and the current send rate, over every probe; a
// probe fed by another (-discover, the MRU list) counts the targets given
// to it so far (given), so the bar goes on while they are probed.
func (p *progress) counts() (done, replied, sendErrs uint64, rate float64) {
	p.given = 0
	for _, pr := range p.s.probes {
		st := pr.proberStats()
		c := &st.Statuses
		done += st.Finished
		replied += c.OK + c.Partial + c.ProtocolError + c.ServerError
		sendErrs += st.SendErrors
		rate += st.CurrentSendRate
		if in := pr.input(); in != nil {
			p.given += int64(in.f.Sent())
		}
	}
	return done, replied, sendErrs, rate
}

// all is the count the bar fills: every probe's targets, the fed ones'
// as given so far.
func (p *progress) all() int64 { return p.total + p.given }

func sendErrText(n uint64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d send errors", n)
}

// pace returns the share done, in percent, and the time left at the
// pace so far ("?" before the first result). The total is an estimate
// for large sharded scans, so it can be passed.
func (p *progress) pace(done uint64, elapsed time.Duration) (pct float64, left string) {
	left = "?"
	switch {
	case int64(done) >= p.all():
		left = "0s"
	case done > 0:
		left = (time.Duration(float64(elapsed) * float64(p.all()-int64(done)) / float64(done))).Round(time.Second).String()
	}
	if p.all() > 0 {
		pct = min(100, 100*float64(done)/float64(p.all()))
	}
	return pct, left
}

// barWidth is the number of cells of the bar itself.
const barWidth = 24

// drawBar redraws the bar's line in place: carriage return, the line,
// then blanks over what is left of a longer previous one. It holds only
// numbers, so nothing in it needs escaping, and it is cut to the
// terminal's width, since a line that wraps cannot be redrawn.
func (p *progress) drawBar() {
	done, replied, sendErrs, rate := p.counts()
	elapsed := time.Since(p.start)
	pct, left := p.pace(done, elapsed)
	cells := int(pct / 100 * barWidth)
	line := fmt.Sprintf("scanning %3.0f%% [%s%s] %d/%d, %d replied%s, %.0f req/s [%s<%s]",
		pct, strings.Repeat("#", cells), strings.Repeat("-", barWidth-cells), done, p.all(),
		replied, sendErrText(sendErrs), rate, elapsed.Round(time.Second), left)
	if p.width > 1 && len(line) > p.width-1 {
		line = line[:p.width-1]
	}
	pad := max(0, p.drawn-len(line))
	fmt.Fprintf(p.s.stderr, "\r%s%s", line, strings.Repeat(" ", pad))
	if pad > 0 {
		fmt.Fprintf(p.s.stderr, "\r%s", line)
	}
	p.drawn = len(line)
}

// clearBar blanks the bar's line and leaves the cursor at its start.
func (p *progress) clearBar() {
	if p.drawn > 0 {
		fmt.Fprintf(p.s.stderr, "\r%s\r", strings.Repeat(" ", p.drawn))
		p.drawn = 0
	}
}

func (p *progress) line() {
	done, replied, sendErrs, rate := p.counts()
	elapsed := time.Since(p.start)
	pct, left := p.pace(done, elapsed)
	fmt.Fprintf(p.s.stderr, "scanner: %d/%d results (%.1f%%), %d replied%s, %.0f req/s, %s elapsed, about %s left\n",
		done, p.all(), pct, replied, sendErrText(sendErrs), rate, elapsed.Round(time.Second), left)
}

// note prints a message without garbling the bar.
func (p *progress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearBar()
	fmt.Fprintln(p.s.stderr, "scanner:", report.TerminalSafe(msg)) // may quote a server or a file
}

// report gives the counts to the options' onProgress.
func (p *progress) report() {
	done, replied, sendErrs, rate := p.counts()
	p.s.opts.onProgress(done, uint64(max(p.all(), 0)), replied, sendErrs, rate)
}

// stop ends the display.
func (p *progress) stop() {
	p.once.Do(func() {
		close(p.quit)
		p.done.Wait()
		p.mu.Lock()
		if p.s.opts.onProgress != nil {
			p.report()
		}
		p.clearBar()
		p.mu.Unlock()
	})
}
