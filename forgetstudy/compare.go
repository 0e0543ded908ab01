package forgetstudy

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
)

// ModelPairs names, for each real-kernel policy, the model policy that
// models the same kernel configuration. v3-cap2 and v3-delay10ms have no
// exact model twin (model-capped caps at 1 entry; model-held-back also
// holds for 256 forgets); they pair with the nearest.
var ModelPairs = [][2]string{
	{NameDevFuse, "model-devfuse"},
	{NameUringForgetsOnDevFuse, "model-uring-forgets-on-devfuse"},
	{NameUringForgetCommit, "model-patch-v3"},
	{"v3-batch", "model-batched"},
	{"v3-cap2", "model-capped"},
	{"v3-batch-cap1", "model-batched-capped"},
	{"v3-delay10ms", "model-held-back"},
	{"v3-small4-batch", "model-small-ents"},
}

// compareCounts are the counts the model is checked against: forgets per
// /dev/fuse message, ring messages per forget, ring CQEs plus commits per
// forget, io_uring_enter calls per forget (the VM's: the storm's excess
// over the reads' rate; the model's: the enters that carried forget work)
// and the most ring entries holding forgets.
var compareCounts = []struct{ label, real, model string }{
	{"forgets per /dev/fuse msg", MDevPerMsg, MDevPerMsg},
	{"forget msgs per forget (both paths)", MMsgsPerForget, MMsgsPerForget},
	{"ring CQEs+commits per forget", MRingOpsPerFgt, MRingOpsPerFgt},
	{"io_uring_enter per forget", MXEnters, MRingEntersPerFgt},
	{"entries holding forgets, max", MHeldMax, MHeldMax},
}

// ReadReport reads a results.json back into a report.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

// ReadSummaries reads the runs of a results.json and summarizes them
// anew, so that metrics added since the study ran are there too.
func ReadSummaries(path string) (map[string]Summary, error) {
	rep, err := ReadReport(path)
	if err != nil {
		return nil, err
	}
	m := map[string]Summary{}
	for _, s := range rep.Summaries() {
		m[s.Policy] = s
	}
	return m, nil
}

// WriteModelError prints, for every pair of [ModelPairs] present in both,
// each count's median on the real kernel and in the model and their
// ratio (model / real).
func WriteModelError(w io.Writer, real, model map[string]Summary) {
	var rows [][]string
	for _, p := range ModelPairs {
		r, okR := real[p[0]]
		m, okM := model[p[1]]
		if !okR || !okM || r.Runs == 0 || m.Runs == 0 {
			continue
		}
		for _, c := range compareCounts {
			a, b := median(r.Metrics[c.real]), median(m.Metrics[c.model])
			if !finite(a) && !finite(b) {
				continue
			}
			rows = append(rows, []string{p[0] + " / " + p[1], c.label, trimFloat(a), trimFloat(b), modelRatio(a, b)})
		}
	}
	table(w, []string{"real kernel / model", "count", "real kernel (median)", "model (median)", "model / real"}, rows)
}

// modelRatio prints b/a, "=" when both are 0, "–" when either is missing.
func modelRatio(a, b float64) string {
	switch {
	case !finite(a) || !finite(b):
		return "–"
	case a == 0 && b == 0:
		return "="
	case a == 0:
		return "∞"
	}
	return trimFloat(b/a) + "×"
}

// median is s's median, NaN without data.
func median(s Spread) float64 {
	if s.N == 0 {
		return math.NaN()
	}
	return s.Median
}
