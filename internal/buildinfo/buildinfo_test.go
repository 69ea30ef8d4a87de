package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFormat(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Path: "github.com/ntpctl/ntpctl/ntpctl",
		Main: debug.Module{Path: "github.com/ntpctl/ntpctl", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123abcd"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	assert.Equal(t, `ntpctl (devel)
module   github.com/ntpctl/ntpctl
package  github.com/ntpctl/ntpctl/ntpctl
revision 0123abcd
time     2026-12-01T10:00:00Z
modified true
go       go1.26.0
`, Format("ntpctl", bi))

	bi = &debug.BuildInfo{GoVersion: "go1.26.0", Path: "github.com/ntpctl/ntpctl",
		Main: debug.Module{Path: "github.com/ntpctl/ntpctl", Version: "v1.2.3"}}
	assert.Equal(t, `scanner v1.2.3
module   github.com/ntpctl/ntpctl
revision unknown (built without VCS information: go build -buildvcs=false, or outside a checkout)
go       go1.26.0
`, Format("scanner", bi))
}

func TestText(t *testing.T) {
	assert.Contains(t, Text("x"), "go       go1.")
}

func TestFormatLine(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/ntpctl/ntpctl"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}}}
	assert.Equal(t, "scanner (devel) 0123456789ab", FormatLine("scanner", bi))
	assert.Equal(t, "scanner v1.2.3", FormatLine("scanner", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}))
}
