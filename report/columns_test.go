package report

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/internal/hexcap"
	"github.com/ntpctl/ntpctl/mode6"
)

// The column tables are the rows' string fields, each once, in struct
// order (Common's first), so the struct, the header and every layout
// agree; every name of a layout is in the table or retired.
func TestColumnTables(t *testing.T) {
	checkTable(t, &versionSchema)
	checkTable(t, &monitorSchema)
	assert.Equal(t, []string{"version", "clk_wander", "clock", "error", "frequency", "jitter", "leap", "mintc",
		"noise", "offset", "peer", "phase", "poll", "precision", "processor", "refid", "reftime", "rootdelay",
		"rootdispersion", "stability", "state", "stratum", "system", "tai", "tc"}, varNames,
		"the variable columns of scan_ntp, in the report's order")
	assert.Equal(t, versionLayouts[LayoutCurrent][:len(commonTable)], monitorLayouts[LayoutCurrent][:len(commonTable)])
}

func checkTable[T Row](t *testing.T, s *schema[T]) {
	t.Helper()
	var row T
	var fields []uintptr
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			switch f := v.Field(i); f.Kind() {
			case reflect.String:
				fields = append(fields, f.Addr().Pointer())
			case reflect.Struct:
				walk(f)
			}
		}
	}
	walk(reflect.ValueOf(&row).Elem())
	require.Len(t, s.cols, len(fields), "%v: one column per string field", s.typ)
	require.Less(t, len(s.cols), 64, "fillVars keeps a bit per column")
	for i, c := range s.cols {
		assert.Equal(t, fields[i], reflect.ValueOf(c.field(&row)).Pointer(), "%v column %d (%s) is field %d", s.typ, i, c.name, i)
	}
	assert.Equal(t, names(s.cols, nil), s.current())
	for l, cols := range s.layouts {
		for _, name := range cols {
			assert.True(t, s.col(name) != nil || slices.Contains(retired, name), "%v layout %v: %s", s.typ, Layout(l), name)
		}
	}
}

// Each variable column takes the variable of its name, jitter also
// sys_jitter and rootdispersion also rootdisp; nothing else fills one.
func TestColumnVariables(t *testing.T) {
	vars := func(name string) []string { return versionSchema.col(name).vars }
	assert.Equal(t, []string{"jitter", "sys_jitter"}, vars("jitter"))
	assert.Equal(t, []string{"rootdispersion", "rootdisp"}, vars("rootdispersion"))
	assert.Equal(t, []string{"tc"}, vars("tc"))
	assert.Nil(t, vars("asn"))
	assert.Nil(t, vars("response_size"))
	n := 0
	for _, c := range versionSchema.cols {
		if c.vars != nil {
			assert.Equal(t, c.name, c.vars[0], "a column takes its own name first")
			n += len(c.vars)
		}
	}
	assert.Len(t, versionSchema.byVar, n, "no variable fills two columns")
	for _, c := range monitorSchema.cols {
		assert.Nil(t, c.vars, c.name)
	}
}

// readVars returns the variables of a READVAR capture in mode6/testdata.
func readVars(t *testing.T, name string) mode6.Vars {
	t.Helper()
	pkts, err := hexcap.Load(filepath.Join("..", "mode6", "testdata", name+".hex.txt"))
	require.NoError(t, err)
	var r mode6.Reassembler
	for _, p := range pkts {
		if p.Dst.Port() == 123 {
			var h mode6.Header
			require.NoError(t, h.UnmarshalBinary(p.Payload))
			r.Reset(h.Seq, h.Op)
		} else {
			_ = r.Add(p.Payload)
		}
	}
	vs, _ := mode6.ParseVars(r.Reply().Data)
	require.NotEmpty(t, vs)
	return vs
}

// The variable columns of a real ntpsec 1.2.2 and a classic ntpd 4.2.8
// answer: values as printed, quotes stripped, the later names taken,
// nothing invented (these assertions were mode6's ReportValue tests).
func TestFillVars(t *testing.T) {
	var row VersionRow
	fillVars(&row, readVars(t, "ntpsec-rv-v4"))
	assert.Equal(t, "0.840", row.RootDispersion, "rootdispersion takes rootdisp")
	assert.Equal(t, "0.000000", row.Jitter, "jitter takes sys_jitter")
	assert.Equal(t, "ntpd ntpsec-1.2.2", row.Version, "without quotes")
	assert.Equal(t, "0x00000000.00000000", row.RefTime, "as printed")
	assert.Equal(t, "-24", row.Precision)
	assert.Equal(t, "", row.Error, "nothing is invented")
	assert.Equal(t, Common{}, row.Common, "only variable columns")
	assert.Empty(t, row.ResponseSize+row.Amplification)

	var classic VersionRow
	fillVars(&classic, readVars(t, "classic-rv-v4"))
	assert.NotEmpty(t, classic.Version)
	assert.NotEmpty(t, classic.RootDispersion)

	both := mode6.Vars{{Name: "rootdisp", Value: "1"}, {Name: "rootdispersion", Value: "2"}, {Name: "jitter", Value: "3"},
		{Name: "sys_jitter", Value: "4"}, {Name: "tc", Value: "5"}, {Name: "tc", Value: "6"}, {Name: "asn", Value: "7"}}
	row = VersionRow{}
	fillVars(&row, both)
	assert.Equal(t, "1", row.RootDispersion, "the first in wire order")
	assert.Equal(t, "3", row.Jitter)
	assert.Equal(t, "5", row.TC, "a name twice: the first")
	assert.Equal(t, Common{}, row.Common, "a variable named like a common column fills nothing")
	var sv mode6.SystemVars
	require.NoError(t, sv.UnmarshalVars(both))
	assert.Equal(t, 1.0, sv.RootDisp, "the typed view agrees with the report")
	assert.Equal(t, 3.0, sv.SysJitter)
}
