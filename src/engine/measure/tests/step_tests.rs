//! One table test per rule of the measurement loop (reference study §4.2).

use super::*;
use AnalysisPhase::{Error, Failed, Inconclusive, Pending, Running, Successful};

fn phase(d: &MeasureDecision) -> AnalysisPhase {
    d.status.phase.unwrap()
}

#[test]
fn run_start_is_running_with_started_at_and_results_in_spec_order() {
    let spec = run(vec![metric("b"), metric("a")]);
    let d = step(&spec, None, &[], at(0));
    assert_eq!(phase(&d), Running);
    assert_eq!(d.status.started_at, Some(Time(at(0))));
    let names: Vec<_> = d
        .status
        .metric_results
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["b", "a"]);
    assert!(d.status.metric_results.iter().all(|r| r.phase == Pending));
    assert_eq!(
        due_names(&d),
        ["b", "a"],
        "both first measurements are due at once"
    );
    // A later call keeps the original start.
    let again = step(&spec, Some(&d.status), &[], at(5));
    assert_eq!(again.status.started_at, Some(Time(at(0))));
}

#[test]
fn no_count_and_no_interval_measures_once() {
    let spec = run(vec![metric("m")]);
    let d = drive(&spec, &|_, _| Successful, 10);
    let last = d.last().unwrap();
    assert_eq!(phase(last), Successful, "{:#?}", last.status);
    assert_eq!(result(last, "m").count, 1);
    assert!(last.status.completed_at.is_some());
    assert_eq!(last.requeue_after, None);
}

#[test]
fn interval_only_measures_until_terminated() {
    let spec = run(vec![Metric {
        interval: Some("30s".to_string()),
        ..metric("m")
    }]);
    let d = drive(&spec, &|_, _| Successful, 40);
    let last = d.last().unwrap();
    assert_eq!(
        phase(last),
        Running,
        "an indefinite metric never ends by itself"
    );
    assert!(result(last, "m").count >= 15);
    let terminated = AnalysisRunSpec {
        terminate: true,
        ..spec.clone()
    };
    let end = step(&terminated, Some(&last.status), &[], at(10_000));
    assert_eq!(phase(&end), Successful);
    assert_eq!(end.status.message.as_deref(), Some("run terminated"));
    assert_eq!(result(&end, "m").phase, Successful);
}

#[test]
fn count_above_one_needs_an_interval() {
    let spec = run(vec![Metric {
        count: int(3),
        ..metric("m")
    }]);
    let d = step(&spec, None, &[], at(0));
    assert_eq!(result(&d, "m").phase, Error);
    let message = result(&d, "m").message.clone().unwrap();
    assert!(
        message.contains("count (3) > 1 needs an interval"),
        "{message}"
    );
    assert_eq!(phase(&d), Error);
    assert!(d.due.is_empty());
}

#[test]
fn first_measurement_waits_for_initial_delay() {
    let spec = run(vec![Metric {
        initial_delay: Some("2m".to_string()),
        ..metric("m")
    }]);
    let d = step(&spec, None, &[], at(0));
    assert!(d.due.is_empty());
    assert_eq!(d.requeue_after, Some(Duration::from_secs(120)));
    let later = step(&spec, Some(&d.status), &[], at(100));
    assert_eq!(
        later.requeue_after,
        Some(Duration::from_secs(20)),
        "counted from startedAt"
    );
    let due = step(&spec, Some(&d.status), &[], at(120));
    assert_eq!(due_names(&due), ["m"]);
}

#[test]
fn next_measurement_is_interval_after_the_last_finished() {
    let spec = run(vec![every("m", 3, 60)]);
    let d = step(&spec, None, &[], at(0));
    let mut m = measured(Successful, 0);
    m.finished_at = Some(Time(at(7)));
    let taken = [Taken {
        metric: "m".to_string(),
        measurement: m,
    }];
    let d = step(&spec, Some(&d.status), &taken, at(7));
    assert!(d.due.is_empty());
    assert_eq!(d.requeue_after, Some(Duration::from_secs(60)));
    assert_eq!(due_names(&step(&spec, Some(&d.status), &[], at(67))), ["m"]);
}

/// count, successful, failed, inconclusive, error, consecutiveError, consecutiveSuccess.
type Counts = (i32, i32, i32, i32, i32, i32, i32);

#[test]
fn taken_measurements_update_counts_and_streaks() {
    // phases folded in order → (count, successful, failed, inconclusive, error, consecutiveError, consecutiveSuccess)
    let cases: &[(&[AnalysisPhase], Counts)] = &[
        (&[Successful, Successful], (2, 2, 0, 0, 0, 0, 2)),
        (&[Error, Error], (0, 0, 0, 0, 2, 2, 0)),
        (&[Error, Successful], (1, 1, 0, 0, 1, 0, 1)),
        (&[Successful, Error], (1, 1, 0, 0, 1, 1, 0)),
        (
            &[Successful, Inconclusive, Successful],
            (3, 2, 0, 1, 0, 0, 1),
        ),
    ];
    let spec = AnalysisRunSpec {
        metrics: vec![Metric {
            inconclusive_limit: int(5),
            ..every("m", 10, 1)
        }],
        ..AnalysisRunSpec::default()
    };
    for (phases, want) in cases {
        let mut status = step(&spec, None, &[], at(0)).status;
        for (i, p) in phases.iter().enumerate() {
            let secs = i64::try_from(i).unwrap() * 10;
            status = step(&spec, Some(&status), &[taken("m", *p, secs)], at(secs)).status;
        }
        let r = &status.metric_results[0];
        let got = (
            r.count,
            r.successful,
            r.failed,
            r.inconclusive,
            r.error,
            r.consecutive_error,
            r.consecutive_success,
        );
        assert_eq!(got, *want, "after {phases:?}: {r:#?}");
    }
}

#[test]
fn in_progress_measurement_counts_only_when_replaced_by_a_final_one() {
    let spec = run(vec![metric("job")]);
    let d = step(&spec, None, &[], at(0));
    let mut running = measured(Running, 0);
    running.finished_at = None;
    running.resume_at = Some(Time(at(30)));
    running
        .metadata
        .insert("job".to_string(), "run-1".to_string());
    let t = Taken {
        metric: "job".to_string(),
        measurement: running.clone(),
    };
    let d = step(&spec, Some(&d.status), &[t], at(1));
    let r = result(&d, "job");
    assert_eq!((r.count, r.measurements.len(), r.phase), (0, 1, Running));
    assert_eq!(r.metadata.get("job").map(String::as_str), Some("run-1"));
    assert!(d.due.is_empty());
    assert_eq!(d.requeue_after, Some(Duration::from_secs(29)));

    let resume = step(&spec, Some(&d.status), &[], at(30));
    assert_eq!(
        resume.due,
        [Due {
            metric: "job".to_string(),
            resume: Some(running.clone()),
            due_at: at(30),
        }]
    );

    let mut done = running;
    done.phase = Successful;
    done.finished_at = Some(Time(at(31)));
    done.resume_at = None;
    let t = Taken {
        metric: "job".to_string(),
        measurement: done,
    };
    let end = step(
        &spec,
        Some(&resume.status),
        std::slice::from_ref(&t),
        at(31),
    );
    let r = result(&end, "job");
    assert_eq!((r.count, r.measurements.len(), r.phase), (1, 1, Successful));
    assert_eq!(phase(&end), Successful);
    // Handing the same final measurement in again does not count it twice.
    let d = step(&spec, Some(&d.status), &[t.clone(), t], at(31));
    assert_eq!(result(&d, "job").count, 1);
}

#[test]
fn metric_metadata_is_the_latest_measurements() {
    let spec = run(vec![every("m", 3, 1)]);
    let mut status = step(&spec, None, &[], at(0)).status;
    for (i, query) in ["q1", "q2"].iter().enumerate() {
        let secs = i64::try_from(i).unwrap() * 5;
        let mut t = taken("m", Successful, secs);
        t.measurement
            .metadata
            .insert("query".to_string(), (*query).to_string());
        status = step(&spec, Some(&status), &[t], at(secs)).status;
    }
    assert_eq!(
        status.metric_results[0].metadata.get("query").unwrap(),
        "q2"
    );
}

/// Folds `phases` into a metric with the given limits and returns its phase and message.
fn assessed(m: Metric, phases: &[AnalysisPhase]) -> (AnalysisPhase, Option<String>) {
    let spec = run(vec![m]);
    let mut status = step(&spec, None, &[], at(0)).status;
    for (i, p) in phases.iter().enumerate() {
        let secs = i64::try_from(i).unwrap() * 100;
        status = step(&spec, Some(&status), &[taken("m", *p, secs)], at(secs)).status;
    }
    let r = &status.metric_results[0];
    (r.phase, r.message.clone())
}

#[test]
fn failure_limit_fails_the_metric_when_exceeded() {
    let cases: &[(Option<IntOrString>, &[AnalysisPhase], AnalysisPhase)] = &[
        (None, &[Failed], Failed),
        (int(1), &[Failed], Running),
        (int(1), &[Failed, Failed], Failed),
        (int(-1), &[Failed, Failed, Failed], Running),
    ];
    for (limit, phases, want) in cases {
        let m = Metric {
            failure_limit: limit.clone(),
            ..every("m", 10, 1)
        };
        let (got, message) = assessed(m, phases);
        assert_eq!(got, *want, "limit {limit:?} after {phases:?}: {message:?}");
    }
    let m = Metric {
        failure_limit: int(1),
        ..every("m", 10, 1)
    };
    let (_, message) = assessed(m, &[Failed, Failed]);
    assert_eq!(
        message.as_deref(),
        Some("metric \"m\" assessed Failed due to failed (2) > failureLimit (1)")
    );
}

#[test]
fn inconclusive_limit_makes_the_metric_inconclusive_when_exceeded() {
    let cases: &[(Option<IntOrString>, &[AnalysisPhase], AnalysisPhase)] = &[
        (None, &[Inconclusive], Inconclusive),
        (int(2), &[Inconclusive, Inconclusive], Running),
        (
            int(2),
            &[Inconclusive, Inconclusive, Inconclusive],
            Inconclusive,
        ),
    ];
    for (limit, phases, want) in cases {
        let m = Metric {
            inconclusive_limit: limit.clone(),
            ..every("m", 10, 1)
        };
        assert_eq!(
            assessed(m, phases).0,
            *want,
            "limit {limit:?} after {phases:?}"
        );
    }
}

#[test]
fn consecutive_error_limit_defaults_to_four() {
    let cases: &[(Option<IntOrString>, usize, AnalysisPhase)] = &[
        (None, 4, Running),
        (None, 5, Error),
        (int(0), 1, Error),
        (int(2), 2, Running),
    ];
    for (limit, errors, want) in cases {
        let m = Metric {
            consecutive_error_limit: limit.clone(),
            ..every("m", 10, 1)
        };
        let (got, message) = assessed(m, &vec![Error; *errors]);
        assert_eq!(
            got, *want,
            "limit {limit:?} after {errors} errors: {message:?}"
        );
    }
}

#[test]
fn an_error_is_retried_after_ten_seconds_without_an_interval() {
    let spec = run(vec![metric("m")]);
    let d = step(&spec, None, &[], at(0));
    let d = step(&spec, Some(&d.status), &[taken("m", Error, 0)], at(0));
    assert_eq!(
        result(&d, "m").phase,
        Running,
        "one error does not use up count 1"
    );
    assert_eq!(d.requeue_after, Some(ERROR_RETRY_INTERVAL));
}

#[test]
fn consecutive_success_limit_ends_the_metric_early() {
    let m = Metric {
        consecutive_success_limit: int(2),
        failure_limit: int(-1),
        ..every("m", 10, 1)
    };
    let (got, message) = assessed(m.clone(), &[Successful, Failed, Successful, Successful]);
    assert_eq!(got, Successful);
    assert_eq!(
        message.as_deref(),
        Some(
            "metric \"m\" assessed Successful due to consecutiveSuccess (2) >= \
             consecutiveSuccessLimit (2)"
        )
    );
    assert_eq!(assessed(m, &[Successful, Failed, Successful]).0, Running);
}

#[test]
fn count_reached_depends_on_which_limits_are_active() {
    let phases = [Successful, Failed, Successful];
    let cases: &[(Option<IntOrString>, Option<IntOrString>, AnalysisPhase)] = &[
        // failureLimit, consecutiveSuccessLimit → phase when count (3) is reached unmet
        (int(5), int(3), Inconclusive),
        (int(-1), int(3), Failed),
        (int(5), None, Successful),
    ];
    for (failure, success, want) in cases {
        let m = Metric {
            failure_limit: failure.clone(),
            consecutive_success_limit: success.clone(),
            ..every("m", 3, 1)
        };
        let (got, message) = assessed(m, &phases);
        assert_eq!(
            got, *want,
            "failureLimit {failure:?}, successLimit {success:?}: {message:?}"
        );
    }
}

#[test]
fn limits_and_count_resolve_from_literal_arguments() {
    let with = |count: &str, args: Vec<Argument>| AnalysisRunSpec {
        metrics: vec![Metric {
            count: text(count),
            failure_limit: text("{{ args.limit }}"),
            interval: Some("{{args.every}}".to_string()),
            ..metric("m")
        }],
        args,
        ..AnalysisRunSpec::default()
    };
    let good = with(
        "{{args.n}}",
        vec![
            literal("n", "2"),
            literal("limit", "1"),
            literal("every", "30s"),
        ],
    );
    let d = drive(&good, &|_, _| Failed, 20);
    let last = d.last().unwrap();
    let r = result(last, "m");
    assert_eq!(
        (r.count, r.phase),
        (2, Failed),
        "limit 1 tolerates one failure: {r:#?}"
    );

    let cases: &[(AnalysisRunSpec, &str)] = &[
        (
            with(
                "{{args.n}}",
                vec![secret("n"), literal("limit", "1"), literal("every", "5s")],
            ),
            "count: argument n must be a literal",
        ),
        (
            with("lots", vec![literal("limit", "1"), literal("every", "5s")]),
            "count: \"lots\" is not an integer",
        ),
        (
            with("2", vec![literal("limit", "x"), literal("every", "5s")]),
            "failureLimit: \"x\" is not an integer",
        ),
        (
            with("2", vec![literal("limit", "1"), literal("every", "soon")]),
            "interval: ",
        ),
        (
            with("2", vec![literal("every", "5s")]),
            "failureLimit: argument limit is not defined",
        ),
    ];
    for (spec, want) in cases {
        let d = step(spec, None, &[], at(0));
        let r = result(&d, "m");
        let message = r.message.clone().unwrap_or_default();
        assert_eq!(r.phase, Error, "{want}: {r:#?}");
        assert!(
            message.contains(want),
            "{message:?} should contain {want:?}"
        );
    }
}

#[test]
fn dry_run_metrics_never_decide_the_run() {
    let spec = AnalysisRunSpec {
        dry_run: vec![dry("noisy")],
        ..run(vec![metric("noisy"), metric("real")])
    };
    let d = drive(
        &spec,
        &|m, _| if m == "noisy" { Failed } else { Successful },
        10,
    );
    let last = d.last().unwrap();
    assert_eq!(phase(last), Successful, "{:#?}", last.status);
    assert!(result(last, "noisy").dry_run);
    assert_eq!(result(last, "noisy").phase, Failed);
    let summary = |s: &Option<RunSummary>| {
        s.clone()
            .map(|s| (s.count, s.successful, s.failed, s.inconclusive, s.error))
    };
    assert_eq!(summary(&last.status.run_summary), Some((1, 1, 0, 0, 0)));
    assert_eq!(summary(&last.status.dry_run_summary), Some((1, 0, 1, 0, 0)));

    let all = AnalysisRunSpec {
        dry_run: vec![dry("*")],
        ..spec
    };
    let d = drive(&all, &|_, _| Failed, 10);
    assert_eq!(
        phase(d.last().unwrap()),
        Successful,
        "`*` makes every metric dry-run"
    );
}

#[test]
fn measurement_retention_keeps_the_newest() {
    let cases: &[(Vec<MeasurementRetention>, usize)] = &[
        (vec![], DEFAULT_RETENTION),
        (vec![keep("*", 3)], 3),
        (vec![keep("m", 2), keep("*", 5)], 5),
        (vec![keep("*", 5), keep("m", 2)], 2),
        (vec![keep("other", 1)], DEFAULT_RETENTION),
    ];
    for (retention, want) in cases {
        let spec = AnalysisRunSpec {
            measurement_retention: retention.clone(),
            ..run(vec![every("m", 20, 1)])
        };
        let last = drive(&spec, &|_, _| Successful, 100).pop().unwrap();
        let r = result(&last, "m");
        assert_eq!(r.measurements.len(), *want, "{retention:?}");
        assert_eq!(r.count, 20, "counts keep counting");
        assert_eq!(
            r.measurements.last().unwrap().started_at,
            Some(Time(at(19))),
            "the newest is kept"
        );
    }
}

#[test]
fn a_failed_metric_completes_the_run_and_stops_the_others() {
    let spec = run(vec![every("slow", 10, 60), metric("bad")]);
    let d = step(&spec, None, &[], at(0));
    let mut job = measured(Running, 0);
    job.finished_at = None;
    job.resume_at = Some(Time(at(50)));
    let t = [
        Taken {
            metric: "slow".to_string(),
            measurement: job.clone(),
        },
        taken("bad", Failed, 0),
    ];
    let d = step(&spec, Some(&d.status), &t, at(1));
    assert_eq!(phase(&d), Failed);
    assert_eq!(
        d.status.message.as_deref(),
        Some("metric \"bad\" assessed Failed due to failed (1) > failureLimit (0)")
    );
    assert_eq!(result(&d, "slow").phase, Successful, "stopped early");
    assert_eq!(
        d.stop,
        [Due {
            metric: "slow".to_string(),
            resume: Some(job),
            due_at: at(1),
        }]
    );
    assert!(
        result(&d, "slow")
            .measurements
            .iter()
            .all(|m| m.phase != Running)
    );
    assert!(d.due.is_empty());
    assert_eq!(d.requeue_after, None);
    assert_eq!(d.status.completed_at, Some(Time(at(1))));
}

#[test]
fn run_phase_is_the_worst_metric_phase() {
    let cases: &[(&[AnalysisPhase], AnalysisPhase)] = &[
        (&[Successful, Successful], Successful),
        (&[Successful, Inconclusive], Inconclusive),
        (&[Inconclusive, Error], Error),
        (&[Error, Failed], Failed),
    ];
    for (phases, want) in cases {
        let metrics = (0..phases.len())
            .map(|i| metric(&format!("m{i}")))
            .collect();
        let spec = run(metrics);
        let status = step(&spec, None, &[], at(0)).status;
        let taken: Vec<_> = phases
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                // An Error needs five in a row to end the metric.
                let times = if *p == Error { 5 } else { 1 };
                (0..times).map(move |k| taken(&format!("m{i}"), *p, k))
            })
            .collect();
        let d = step(&spec, Some(&status), &taken, at(10));
        assert_eq!(phase(&d), *want, "{phases:?}: {:#?}", d.status);
    }
}

#[test]
fn terminate_completes_once_and_keeps_its_completion_time() {
    let spec = AnalysisRunSpec {
        terminate: true,
        ..run(vec![every("m", 5, 10)])
    };
    let first = step(&spec, None, &[], at(3));
    assert_eq!(phase(&first), Successful);
    assert_eq!(first.status.message.as_deref(), Some("run terminated"));
    assert_eq!(first.status.completed_at, Some(Time(at(3))));
    let later = step(&spec, Some(&first.status), &[taken("m", Failed, 9)], at(9));
    assert_eq!(later.status, first.status, "a completed run never changes");
    assert_eq!((later.due.len(), later.requeue_after), (0, None));
}

#[test]
fn requeue_is_the_exact_time_to_the_earliest_due_measurement() {
    let spec = run(vec![every("fast", 5, 30), every("slow", 5, 90)]);
    let d = step(&spec, None, &[], at(0));
    let t = [taken("fast", Successful, 0), taken("slow", Successful, 0)];
    let d = step(&spec, Some(&d.status), &t, at(2));
    assert_eq!(d.requeue_after, Some(Duration::from_secs(28)));
    let d = step(&spec, Some(&d.status), &[], at(30));
    assert_eq!(due_names(&d), ["fast"]);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(60)));
}

#[test]
fn validate_metric_reports_what_can_be_checked_without_io() {
    let cases: &[(Metric, Option<&str>)] = &[
        (every("m", 3, 10), None),
        (
            Metric {
                count: text("{{args.n}}"),
                failure_limit: text("{{args.f}}"),
                success_condition: Some("result[0] >= {{args.threshold}}".to_string()),
                ..metric("m")
            },
            None,
        ),
        (
            Metric {
                count: int(3),
                ..metric("m")
            },
            Some("count (3) > 1 needs an interval"),
        ),
        (
            Metric {
                interval: Some("5 minutes".to_string()),
                ..metric("m")
            },
            Some("interval: "),
        ),
        (
            Metric {
                initial_delay: Some("x".to_string()),
                ..metric("m")
            },
            Some("initialDelay: "),
        ),
        (
            Metric {
                failure_limit: int(-1),
                ..metric("m")
            },
            Some("failureLimit -1 needs a consecutiveSuccessLimit"),
        ),
        (
            Metric {
                failure_limit: int(-1),
                consecutive_success_limit: int(3),
                ..metric("m")
            },
            None,
        ),
        (
            Metric {
                failure_condition: Some("result >".to_string()),
                ..metric("m")
            },
            Some("failureCondition: does not parse: at 1:"),
        ),
        (
            Metric {
                inconclusive_limit: int(-2),
                ..metric("m")
            },
            Some("inconclusiveLimit (-2) must not be negative"),
        ),
    ];
    for (m, want) in cases {
        let got = validate_metric(m).map_err(|e| e.to_string());
        match want {
            None => assert!(got.is_ok(), "{m:?}: {got:?}"),
            Some(want) => {
                let message = got.expect_err(want);
                assert!(
                    message.contains(want),
                    "{message:?} should contain {want:?}"
                );
                assert!(message.starts_with("metric \"m\""), "{message}");
            }
        }
    }
}
