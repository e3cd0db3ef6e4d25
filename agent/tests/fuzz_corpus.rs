//! Every input committed under `fuzz/corpus/{target}/` — the seeds, and
//! every crash a fuzzer ever found, kept as a regression — replayed
//! through the same target bodies the fuzzers run, on stable, in CI.

use std::path::Path;

#[test]
fn every_committed_fuzz_input_runs_clean() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (name, _) in airlock::fuzzing::TARGETS {
        let dir = corpus.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (every target has a corpus)", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{} is empty", dir.display());
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            // A panic here names the input that caused it.
            let ran = std::panic::catch_unwind(|| airlock::fuzzing::run(name, &data));
            assert!(
                matches!(ran, Ok(true)),
                "fuzz target {name} fails on {}",
                input.display()
            );
            replayed += 1;
        }
    }
    // Every directory belongs to a target: a renamed target keeps its corpus.
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            airlock::fuzzing::TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} has no target"
        );
    }
    assert!(replayed >= airlock::fuzzing::TARGETS.len());
}
