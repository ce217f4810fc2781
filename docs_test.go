package dstream_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDocLinks checks every relative link of README.md and docs/*.md: the
// file it names must exist, and a #anchor into a Markdown file must be one
// of its headings, so that moving or renaming a page cannot leave a
// dangling reference. Links to other sites are not followed.
func TestDocLinks(t *testing.T) {
	pages, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append([]string{"README.md"}, pages...)
	anchors := map[string]map[string]bool{} // Markdown file -> its anchors
	checked := 0
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range mdLinks(string(b)) {
			checked++
			target, anchor, _ := strings.Cut(l.dest, "#")
			path := page // a bare #anchor is into the page itself
			if target != "" {
				path = filepath.Join(filepath.Dir(page), filepath.FromSlash(target))
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s:%d: link to %s: no such file %s", page, l.line, l.dest, path)
				continue
			}
			if anchor == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			if anchors[path] == nil {
				md, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				anchors[path] = mdAnchors(string(md))
			}
			if !anchors[path][anchor] {
				t.Errorf("%s:%d: link to %s: %s has no heading #%s", page, l.line, l.dest, path, anchor)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no links found: the checker is broken")
	}
}

// TestDocLinksCheckerFinds keeps the checker honest: it must see links,
// skip those in code, and read headings as GitHub makes their anchors.
func TestDocLinksCheckerFinds(t *testing.T) {
	md := "# The `ssink` page: ok?\n\nSee [a](a.md), [b](docs/b.md#x \"title\") and [web](https://x.org).\n" +
		"Inline `[not](code.md)` and\n\n```\n[not](fenced.md)\n```\n\n    [indented](code.md)\n\n[ref]: ref.md\n## Again\n## Again\n"
	var got []string
	for _, l := range mdLinks(md) {
		got = append(got, l.dest)
	}
	if want := "a.md docs/b.md#x ref.md"; strings.Join(got, " ") != want {
		t.Errorf("links: got %q, want %q", strings.Join(got, " "), want)
	}
	a := mdAnchors(md)
	for _, want := range []string{"the-ssink-page-ok", "again", "again-1"} {
		if !a[want] {
			t.Errorf("anchors: no %q in %v", want, a)
		}
	}
}

type mdLink struct {
	dest string
	line int
}

var (
	inlineLink  = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink     = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s+(\S+)`)
	codeSpan    = regexp.MustCompile("`+[^`]*`+")
	external    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`) // https:, mailto:, ...
	orderedItem = regexp.MustCompile(`^\d+\. `)
)

// mdLinks returns the relative link destinations of a Markdown text, with
// their line numbers, leaving out code (fenced, indented and inline) and
// links with a scheme.
func mdLinks(md string) []mdLink {
	var links []mdLink
	for i, line := range mdProse(md) {
		if line == "" {
			continue
		}
		var dests []string
		if m := refLink.FindStringSubmatch(line); m != nil {
			dests = append(dests, m[1])
		}
		for _, m := range inlineLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			dests = append(dests, m[1])
		}
		for _, d := range dests {
			d = strings.Trim(d, "<>")
			if !external.MatchString(d) {
				links = append(links, mdLink{dest: d, line: i + 1})
			}
		}
	}
	return links
}

// mdProse returns the lines of md with the lines of code blocks blanked,
// so that line numbers stay.
func mdProse(md string) []string {
	lines := strings.Split(md, "\n")
	out := make([]string, len(lines))
	fence := ""
	prevBlank := true
	inIndented := false
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
		case strings.HasPrefix(trimmed, "```"), strings.HasPrefix(trimmed, "~~~"):
			fence = trimmed[:3]
		case strings.HasPrefix(line, "    ") && (prevBlank || inIndented) && !isListItem(trimmed):
			// An indented code block starts after a blank line; list item
			// continuations in these pages are indented by two.
			inIndented = true
		default:
			inIndented = inIndented && strings.TrimSpace(line) == ""
			out[i] = line
		}
		prevBlank = strings.TrimSpace(line) == ""
	}
	return out
}

func isListItem(s string) bool {
	return strings.HasPrefix(s, "- ") || strings.HasPrefix(s, "* ") || orderedItem.MatchString(s)
}

// mdAnchors returns the anchors GitHub gives the headings of md: lower
// case, punctuation but '-' and '_' dropped, spaces as '-', and -1, -2, ...
// after a repeated one.
func mdAnchors(md string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range mdProse(md) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimLeft(line, "#")
		if text == "" || text[0] != ' ' {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127:
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			seen[a]++
			a += "-" + strconv.Itoa(n)
		} else {
			seen[a] = 1
		}
		anchors[a] = true
	}
	return anchors
}
