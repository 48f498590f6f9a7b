package clikit

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress draws one line of progress on stderr when stderr is a terminal:
// "verify: 12 MB of 640 MB (1%)". It draws only once the work has run for
// a while, so short work leaves no trace, and at most a few times a second.
// A nil *Progress (what NewProgress returns when stderr is not a terminal)
// does nothing. It is safe for concurrent use.
type Progress struct {
	w    io.Writer
	what string
	now  func() time.Time

	mu          sync.Mutex
	done, total int64
	start, last time.Time
	drawn       bool
}

const (
	// progressDelay is how long work runs before progress shows.
	progressDelay = 500 * time.Millisecond
	// progressEvery bounds how often the line is redrawn.
	progressEvery = 200 * time.Millisecond
)

// NewProgress starts the progress of what, out of total bytes (0 or less:
// unknown), drawn on stderr if it is a terminal; otherwise it returns nil,
// on which every method is a no-op.
func NewProgress(stderr io.Writer, what string, total int64) *Progress {
	if !IsTerminal(stderr) {
		return nil
	}
	return newProgress(stderr, what, total, time.Now)
}

func newProgress(w io.Writer, what string, total int64, now func() time.Time) *Progress {
	return &Progress{w: w, what: what, total: total, now: now, start: now()}
}

// Add counts n more bytes done.
func (p *Progress) Add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.draw()
}

// Set says how many bytes are done.
func (p *Progress) Set(done int64) { p.Update(done, -1) }

// Update says how many bytes are done, and of how many when total > 0.
func (p *Progress) Update(done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = done
	if total > 0 {
		p.total = total
	}
	p.draw()
}

// Func is Update as a callback, for the libraries' Progress options; nil
// for a nil Progress, so that they skip the reporting.
func (p *Progress) Func() func(done, total int64) {
	if p == nil {
		return nil
	}
	return p.Update
}

// draw redraws the line if it is time; p.mu is held.
func (p *Progress) draw() {
	now := p.now()
	if now.Sub(p.start) < progressDelay || (p.drawn && now.Sub(p.last) < progressEvery && p.done != p.total) {
		return
	}
	p.last, p.drawn = now, true
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s: %s of %s (%d%%)\033[K", p.what, Size(p.done), Size(p.total), p.done*100/p.total)
	} else {
		fmt.Fprintf(p.w, "\r%s: %s\033[K", p.what, Size(p.done))
	}
}

// Done clears the line, if one was drawn.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
