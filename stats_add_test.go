package ntpctl

import (
	"reflect"
	"testing"
)

// TestStatsAdd: every counter is added, so that a counter added to Stats
// later and forgotten in Add fails here.
func TestStatsAdd(t *testing.T) {
	var a, b Stats
	fill := func(v reflect.Value, n uint64) {
		var walk func(v reflect.Value)
		walk = func(v reflect.Value) {
			for i := range v.NumField() {
				switch f := v.Field(i); f.Kind() {
				case reflect.Uint64:
					f.SetUint(n)
				case reflect.Float64:
					f.SetFloat(float64(n))
				case reflect.Struct:
					walk(f)
				default:
					t.Fatalf("Stats has a %s field %s: teach Add and this test", f.Kind(), v.Type().Field(i).Name)
				}
			}
		}
		walk(v)
	}
	fill(reflect.ValueOf(&a).Elem(), 2)
	fill(reflect.ValueOf(&b).Elem(), 3)
	a.Add(&b)
	var check func(v reflect.Value, path string)
	check = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			name := path + v.Type().Field(i).Name
			switch f := v.Field(i); f.Kind() {
			case reflect.Uint64:
				if f.Uint() != 5 {
					t.Errorf("%s = %d after Add, want 5", name, f.Uint())
				}
			case reflect.Float64:
				if f.Float() != 5 {
					t.Errorf("%s = %g after Add, want 5", name, f.Float())
				}
			case reflect.Struct:
				check(f, name+".")
			}
		}
	}
	check(reflect.ValueOf(a), "")
}
