package ntpctl_test

import (
	"bufio"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The references TestDocReferences checks, in the repository's .go and
// .md files:
var (
	// a path under docs/, written anywhere (a comment, a README).
	docsPathRE = regexp.MustCompile(`(?:^|[^\w./-])(docs/[\w./-]*[\w/])`)
	// a markdown link or image with a relative target: [text](target).
	mdLinkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// a bare file name such as report-schemas.md, possibly followed by
	// section signs: "report-schemas.md §2.3", "wire-spec.md §3.1-3.2",
	// "report-schemas.md §3.3 and\n// §4.2".
	mdNameRE = regexp.MustCompile(`(?:^|[^\w./-])([\w-]+\.md)\b` + "`?" + `((?:[\s/,]*(?:and[\s/]+)?§\d+(?:\.\d+)*(?:[-–]\d+(?:\.\d+)*)?)*)`)
	// "wire spec §1.6": a section of docs/wire-spec.md.
	wireSpecRE = regexp.MustCompile(`wire spec(?:ification)?\b((?:[\s/,]*(?:and[\s/]+)?§\d+(?:\.\d+)*(?:[-–]\d+(?:\.\d+)*)?)*)`)
	sectionRE  = regexp.MustCompile(`§(\d+(?:\.\d+)*)(?:[-–](\d+(?:\.\d+)*))?`)
	// a heading that opens a numbered section: "## 2.3 CSV rules".
	headingRE = regexp.MustCompile(`^#+\s+(\d+(?:\.\d+)*)\.?\s`)
	// places outside the repository that documents once pointed to.
	outsideRE = regexp.MustCompile(`\bshared/(?:docs|captures)\b|the project's (?:wire specification|real-peers notes)`)
)

// TestDocReferences checks that every document the repository's sources
// and documents refer to is in the repository: paths under docs/, the
// relative targets of markdown links, bare names of .md files (which must
// name a file of the repository) and the numbered sections cited after
// them (report-schemas.md §2.3 needs a heading "2.3" in that file).
func TestDocReferences(t *testing.T) {
	var files []string
	basenames := map[string][]string{} // "README.md" → its paths
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "fuzz") {
				return filepath.SkipDir
			}
			return nil
		}
		p = filepath.ToSlash(p)
		if strings.HasSuffix(p, ".md") {
			basenames[d.Name()] = append(basenames[d.Name()], p)
		}
		if (strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".md")) && p != "docs_test.go" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string]bool{} // doc path → its section numbers
	sectionsOf := func(doc string) map[string]bool {
		if s, ok := sections[doc]; ok {
			return s
		}
		s := map[string]bool{}
		if f, err := os.Open(doc); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m := headingRE.FindStringSubmatch(sc.Text()); m != nil {
					s[m[1]] = true
				}
			}
			f.Close()
		}
		sections[doc] = s
		return s
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	checked := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		line := func(off int) int { return 1 + strings.Count(text[:off], "\n") }
		for _, m := range docsPathRE.FindAllStringSubmatchIndex(text, -1) {
			p := strings.TrimSuffix(text[m[2]:m[3]], ".")
			checked++
			if !exists(p) {
				t.Errorf("%s:%d: %s is not in the repository", file, line(m[2]), p)
			}
		}
		if strings.HasSuffix(file, ".md") {
			for _, m := range mdLinkRE.FindAllStringSubmatchIndex(text, -1) {
				target := text[m[2]:m[3]]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				p := path.Join(path.Dir(file), target)
				checked++
				if !exists(p) {
					t.Errorf("%s:%d: link target %s (%s) is not in the repository", file, line(m[2]), target, p)
				}
			}
		}
		for _, m := range mdNameRE.FindAllStringSubmatchIndex(text, -1) {
			name := text[m[2]:m[3]]
			checked++
			doc := ""
			switch paths := basenames[name]; {
			case exists(path.Join("docs", name)):
				doc = path.Join("docs", name)
			case len(paths) == 0:
				t.Errorf("%s:%d: %s is not in the repository", file, line(m[2]), name)
				continue
			default:
				doc = paths[0]
			}
			for _, s := range sectionRE.FindAllStringSubmatch(text[m[4]:m[5]], -1) {
				for _, n := range s[1:] {
					if n != "" && !sectionsOf(doc)[n] {
						t.Errorf("%s:%d: %s has no section %s", file, line(m[2]), doc, n)
					}
				}
			}
		}
		for _, m := range wireSpecRE.FindAllStringSubmatchIndex(text, -1) {
			const doc = "docs/wire-spec.md"
			checked++
			if !exists(doc) {
				t.Errorf("%s:%d: the wire specification, %s, is not in the repository", file, line(m[0]), doc)
				continue
			}
			for _, s := range sectionRE.FindAllStringSubmatch(text[m[2]:m[3]], -1) {
				for _, n := range s[1:] {
					if n != "" && !sectionsOf(doc)[n] {
						t.Errorf("%s:%d: %s has no section %s", file, line(m[0]), doc, n)
					}
				}
			}
		}
		for _, m := range outsideRE.FindAllStringIndex(text, -1) {
			t.Errorf("%s:%d: %q refers to a document outside the repository", file, line(m[0]), text[m[0]:m[1]])
		}
	}
	if checked == 0 {
		t.Fatal("no references found: the patterns are broken")
	}
}
