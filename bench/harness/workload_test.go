package harness

import (
	"slices"
	"testing"
)

func names(ws []Workload) []string {
	var n []string
	for _, w := range ws {
		n = append(n, w.Name())
	}
	return n
}

func TestSelectWorkloads(t *testing.T) {
	ws, err := SelectWorkloads([]string{"fsmark-2", "stat", "randread-4k-qd1", "stat-warm"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(ws), []string{"fsmark-2", "stat-warm", "stat-cold", "randread-4k-qd1"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	all, err := SelectWorkloads([]string{"all"})
	if err != nil || len(all) != len(BuiltinWorkloads()) {
		t.Errorf("all: %d workloads, %v", len(all), err)
	}
	fio, _ := SelectWorkloads([]string{"fio"})
	if len(fio) != 8 {
		t.Errorf("fio group: %v", names(fio))
	}
	if _, err := SelectWorkloads([]string{"mdtest"}); err == nil {
		t.Error("unknown workload: no error")
	}
}

func TestWorkloadUnits(t *testing.T) {
	for _, w := range BuiltinWorkloads() {
		if w.Unit() == "" || w.Command(DefaultParams()) == "" {
			t.Errorf("%s: empty unit or command", w.Name())
		}
	}
}
