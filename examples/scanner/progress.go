package main

import (
	"fmt"
	"github.com/ntpctl/ntpctl/report"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how the scan goes on stderr: a bar on a terminal, plain
// lines now and then otherwise.
type progress struct {
	s     *scan
	start time.Time // of the scan proper, setup done
	total int64
	bar   *progressbar.ProgressBar
	mu    sync.Mutex // serialises writes to stderr
	quit  chan struct{}
	done  sync.WaitGroup
	once  sync.Once
}

func newProgress(s *scan) *progress {
	p := &progress{s: s, start: time.Now(), quit: make(chan struct{})}
	p.total = int64(s.size) * int64(len(s.probes))
	mode := s.opts.progress
	if mode == "auto" {
		mode = "lines"
		if f, ok := s.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	if p.total <= 0 {
		mode = "none" // nothing to count (an empty shard)
	}
	switch mode {
	case "bar":
		p.bar = progressbar.NewOptions64(p.total, progressbar.OptionSetWriter(s.stderr),
			progressbar.OptionSetDescription("scanning"), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(24),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionShowDescriptionAtLineEnd())
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
// that could not be sent, and the current send rate, over both probes.
func (p *progress) counts() (done, replied, sendErrs uint64, rate float64) {
	for _, pr := range p.s.probes {
		st := pr.proberStats()
		c := &st.Statuses
		done += st.Finished
		replied += c.OK + c.Partial + c.ProtocolError + c.ServerError
		sendErrs += st.SendErrors
		rate += st.CurrentSendRate
	}
	return done, replied, sendErrs, rate
}

func sendErrText(n uint64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d send errors", n)
}

// drawBar updates the bar. Describe and Set64 both draw it, so the bar
// has no throttle of its own (the loop's period is the throttle): with
// one, the second draw is skipped and the count shown lags the
// description.
func (p *progress) drawBar() {
	done, replied, sendErrs, rate := p.counts()
	p.bar.Describe(fmt.Sprintf("%d replied%s, %.0f req/s", replied, sendErrText(sendErrs), rate))
	_ = p.bar.Set64(int64(done))
}

func (p *progress) line() {
	done, replied, sendErrs, rate := p.counts()
	elapsed := time.Since(p.start)
	// Time left at the pace so far; the total is an estimate for large
	// sharded scans, so it can be passed.
	left := "?"
	switch {
	case int64(done) >= p.total:
		left = "0s"
	case done > 0:
		left = (time.Duration(float64(elapsed) * float64(p.total-int64(done)) / float64(done))).Round(time.Second).String()
	}
	pct := 0.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	fmt.Fprintf(p.s.stderr, "scanner: %d/%d results (%.1f%%), %d replied%s, %.0f req/s, %s elapsed, about %s left\n",
		done, p.total, pct, replied, sendErrText(sendErrs), rate, elapsed.Round(time.Second), left)
}

// note prints a message without garbling the bar.
func (p *progress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintln(p.s.stderr, "scanner:", report.TerminalSafe(msg)) // may quote a server or a file
}

// stop ends the display.
func (p *progress) stop() {
	p.once.Do(func() {
		close(p.quit)
		p.done.Wait()
		if p.bar != nil {
			_ = p.bar.Finish()
			_ = p.bar.Clear()
		}
	})
}
