package dash

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// ANSI sequences of the live table: the cursor home, erase to the end of
// the line and of the screen, hide and show the cursor.
const (
	ansiHome       = "\x1b[H"
	ansiEraseLine  = "\x1b[K"
	ansiEraseBelow = "\x1b[J"
	ansiHide       = "\x1b[?25l"
	ansiShow       = "\x1b[?25h"
	ansiBold       = "\x1b[1m"
	ansiReverse    = "\x1b[7m"
	ansiReset      = "\x1b[0m"
)

// Table writes the snapshot as a table, a row per stage: plain text, or
// with ansi, with the header in bold and the bottleneck in reverse video,
// each line cut at width characters (0: no limit), so that none wraps and
// spoils the drawing in place.
func Table(w io.Writer, s Snapshot, ansi bool, width int) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tBATCH\tIN/S\tPROC/S\tBATCH\tBUSY\tDELAY\tRECORDS IN\tOUT\tSTATE\tWATERMARK\tERRORS\tSEEN")
	for _, r := range s.Rows {
		state, wm := "-", "-"
		if r.StateRows != nil {
			state = fmt.Sprint(*r.StateRows)
		}
		if !r.Watermark.IsZero() {
			wm = r.Watermark.UTC().Format("15:04:05")
		}
		busy := fmt.Sprintf("%.0f%%", 100*r.Busy)
		if r.Source {
			busy = "-"
		}
		name := r.Key
		if r.Bottleneck {
			name = "*" + name
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%d\t%s\n",
			name, r.LastBatch, rate(r.InputRate), rate(r.ProcRate), ms(r.BatchMs), busy,
			ms(float64(r.DelayMs)), r.RecordsIn, r.RecordsOut, state, wm, r.Errors, ago(s.Time.Sub(r.LastSeen)))
	}
	tw.Flush()
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	title := fmt.Sprintf("sdash  %s  %d stages  %s", s.Source, len(s.Rows), s.Time.Format("15:04:05"))
	var out strings.Builder
	line := func(l, style string) {
		if r := []rune(l); width > 0 && len(r) > width {
			l = string(r[:width])
		}
		if ansi && style != "" {
			l = style + l + ansiReset
		}
		if ansi {
			l += ansiEraseLine
		}
		out.WriteString(l + "\n")
	}
	line(title, "")
	line("", "")
	for i, l := range lines {
		if i > 0 && s.Rows[i-1].Bottleneck {
			line(l, ansiReverse)
			continue
		}
		style := ""
		if i == 0 {
			style = ansiBold
		}
		line(l, style)
	}
	line("", "")
	for _, r := range s.Rows {
		if r.Failed != "" {
			line(fmt.Sprintf("%s failed: %s", r.Key, r.Failed), "")
		}
	}
	if s.Bottleneck != "" {
		for _, r := range s.Rows {
			if r.Bottleneck {
				line(fmt.Sprintf("bottleneck: %s, busy %.0f%% of the time, %s a batch", r.Key, 100*r.Busy, ms(r.BatchMs)), "")
			}
		}
	} else if len(s.Rows) == 0 {
		line("waiting for progress lines (stages run with --progress pointing here)", "")
	}
	if s.BadLines > 0 {
		if s.BadLines == 1 {
			line("1 line was no progress line", "")
		} else {
			line(fmt.Sprintf("%d lines were no progress lines", s.BadLines), "")
		}
	}
	io.WriteString(w, out.String())
}

// Live redraws the table on the terminal w every refresh until stop is
// closed, in place: the cursor goes home and each line is written over the
// last drawing's. width tells the terminal's width at each drawing (0:
// unknown).
func Live(w io.Writer, d *Dash, width func() int, refresh time.Duration, stop <-chan struct{}) {
	io.WriteString(w, ansiHide+"\x1b[2J")
	defer io.WriteString(w, ansiShow)
	t := time.NewTicker(refresh)
	defer t.Stop()
	for {
		var b strings.Builder
		b.WriteString(ansiHome)
		Table(&b, d.Snapshot(false), true, width())
		b.WriteString(ansiEraseBelow)
		io.WriteString(w, b.String())
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func rate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func ms(m float64) string {
	switch {
	case m >= 60e3:
		return fmt.Sprintf("%.1fm", m/60e3)
	case m >= 1e3:
		return fmt.Sprintf("%.1fs", m/1e3)
	}
	return fmt.Sprintf("%.0fms", m)
}

func ago(d time.Duration) string {
	if d < time.Second {
		return "now"
	}
	return d.Truncate(time.Second).String() + " ago"
}
