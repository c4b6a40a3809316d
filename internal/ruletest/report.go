package ruletest

import (
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"time"
)

// Result is one test's outcome for a report.
type Result struct {
	File     string
	Test     *Test
	Failures []string
	Took     time.Duration
}

// JUnit writes results as a JUnit XML report: a test suite per file, a
// test case per test, a failure with the differences for each that
// failed.
func JUnit(w io.Writer, results []Result) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      string   `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
	}
	type testsuite struct {
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Time     string     `xml:"time,attr"`
		Cases    []testcase `xml:"testcase"`
		took     time.Duration
	}
	type testsuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Time     string       `xml:"time,attr"`
		Suites   []*testsuite `xml:"testsuite"`
	}
	all := testsuites{Name: "switchyard test"}
	suites := map[string]*testsuite{}
	var total time.Duration
	for _, r := range results {
		s := suites[r.File]
		if s == nil {
			s = &testsuite{Name: r.File}
			suites[r.File] = s
			all.Suites = append(all.Suites, s)
		}
		c := testcase{Name: r.Test.Name, Classname: r.File, Time: seconds(r.Took)}
		if len(r.Failures) > 0 {
			first, _, _ := strings.Cut(r.Failures[0], "\n")
			c.Failure = &failure{Message: first, Type: "mismatch", Text: strings.Join(r.Failures, "\n")}
			s.Failures++
			all.Failures++
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
		all.Tests++
		s.took += r.Took
		total += r.Took
	}
	for _, s := range all.Suites {
		s.Time = seconds(s.took)
	}
	all.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }
