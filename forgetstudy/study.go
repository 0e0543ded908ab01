package forgetstudy

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/mount"
)

// RunRecord is one run of one policy.
type RunRecord struct {
	Policy string
	Kind   string
	// Run is 1-based.
	Run int
	// Result is nil if the run was skipped or failed.
	Result *Result `json:",omitempty"`
	// Skipped says why the policy could not run here ([ErrNotSupported]);
	// a skipped policy is not tried again in later runs.
	Skipped string `json:",omitempty"`
	// Err is why the run failed.
	Err string `json:",omitempty"`
	// Elapsed is the run's wall-clock time.
	Elapsed time.Duration
}

// Env describes where a study ran.
type Env struct {
	Kernel      string
	Fio         string
	GoVersion   string
	CPUs        int
	EnableUring string
	Started     time.Time
	// Command is the command line, if the caller sets it.
	Command string
	// FioCommand is the storm run's fio command line.
	FioCommand string
}

// Report is a study's outcome: every run, in the order run.
type Report struct {
	Params   Params
	Env      Env
	Policies []PolicyInfo
	Runs     []RunRecord
}

// PolicyInfo names a policy of a report.
type PolicyInfo struct{ Name, Kind string }

// Run runs every policy p.Runs times, alternating them (A B A B ...), and
// returns the report. A policy that fails with [ErrNotSupported] is
// recorded as skipped and not tried again. Other failures are recorded
// and the study goes on; the returned error joins them. The report is
// never nil, so a partial study can still be written out.
func Run(ctx context.Context, p Params, policies []Policy) (*Report, error) {
	p = p.WithDefaults()
	rep := &Report{Params: p, Env: currentEnv(p)}
	for _, pol := range policies {
		rep.Policies = append(rep.Policies, PolicyInfo{pol.Name(), pol.Kind()})
	}
	if err := p.Validate(); err != nil {
		return rep, err
	}
	if len(policies) == 0 {
		return rep, errors.New("forgetstudy: no policy to run")
	}
	skipped := map[string]bool{}
	var errs []error
	for run := 1; run <= p.Runs; run++ {
		for _, pol := range policies {
			if skipped[pol.Name()] {
				continue
			}
			if err := ctx.Err(); err != nil {
				return rep, errors.Join(append(errs, err)...)
			}
			rec := RunRecord{Policy: pol.Name(), Kind: pol.Kind(), Run: run}
			rp := p
			prefix := fmt.Sprintf("[policy %s run %d/%d] ", pol.Name(), run, p.Runs)
			rp.Logf = func(format string, args ...any) { p.logf(prefix+format, args...) }
			start := time.Now()
			res, err := pol.Run(ctx, rp)
			rec.Elapsed = time.Since(start)
			switch {
			case errors.Is(err, ErrNotSupported):
				rec.Skipped = err.Error()
				skipped[pol.Name()] = true
				rp.logf("skipped: %v", err)
			case err != nil:
				rec.Err = err.Error()
				errs = append(errs, fmt.Errorf("policy %s run %d: %w", pol.Name(), run, err))
				rp.logf("failed after %.1fs: %v", rec.Elapsed.Seconds(), err)
			default:
				res.Policy, res.Kind, res.Run = pol.Name(), pol.Kind(), run
				rec.Result = &res
				rp.logf("done in %.1fs", rec.Elapsed.Seconds())
			}
			rep.Runs = append(rep.Runs, rec)
		}
	}
	return rep, errors.Join(errs...)
}

func currentEnv(p Params) Env {
	e := Env{
		Fio:        fioVersion(p.Read.Fio),
		GoVersion:  runtime.Version(),
		CPUs:       runtime.NumCPU(),
		Started:    time.Now(),
		FioCommand: FioCommand(p.Read),
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	switch on, err := mount.UringEnabled(); {
	case err != nil:
		e.EnableUring = "unknown"
	case on:
		e.EnableUring = "Y"
	default:
		e.EnableUring = "N"
	}
	return e
}
