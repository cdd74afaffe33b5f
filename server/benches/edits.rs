//! Edit-protocol benchmark (`cargo bench -p aisci --bench edits`): parse and apply a
//! 50-block reply to a 5,000-line Python file, with and without the tree-sitter
//! check; p50/p99 over 200 rounds. Target: ≤ 5 ms without the check. Then the adversarial
//! reply that used to take minutes (a 40,000-line file of one repeated line, a SEARCH of
//! 20,000 of them then another line): it must be refused in well under a second.

use std::time::Instant;

use aisci::agent::edits::{apply_blocks, parse_reply, ApplyOptions};

fn source() -> String {
    let mut s = String::from("import math\n\n");
    for f in 0..500 {
        s.push_str(&format!("def f{f}(x):\n"));
        for k in 0..8 {
            s.push_str(&format!("    x = x * {k} + math.sqrt({f})  # step {k}\n"));
        }
        s.push_str("    return x\n");
    }
    s
}

fn reply() -> String {
    let mut r = String::from("Here are the changes.\n\n");
    for b in 0..50 {
        let f = b * 10;
        let body = if b % 5 == 0 {
            // Every fifth block quotes body lines without their indentation, to
            // exercise the whitespace-tolerant match and re-indentation.
            format!("x = x * 0 + math.sqrt({f})  # step 0\nx = x * 1 + math.sqrt({f})  # step 1\n=======\nx = x * 2 + math.sqrt({f})  # changed\nx = x * 1 + math.sqrt({f})  # step 1\n")
        } else {
            format!("def f{f}(x):\n    x = x * 0 + math.sqrt({f})  # step 0\n=======\ndef f{f}(x):\n    x = x * 2 + math.sqrt({f})  # changed\n")
        };
        r.push_str(&format!(
            "experiment.py\n```python\n<<<<<<< SEARCH\n{body}>>>>>>> REPLACE\n```\n\n"
        ));
    }
    r
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let src = source();
    let reply = reply();
    assert_eq!(src.lines().count(), 5002);
    for check in [false, true] {
        let opts = ApplyOptions {
            allowed: &["experiment.py"],
            check_python: check,
        };
        let mut times = Vec::new();
        for round in 0..210 {
            let t = Instant::now();
            let parsed = parse_reply(&reply);
            let out = apply_blocks(&parsed.blocks, &mut |_| Some(src.clone()), &opts).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(parsed.blocks.len(), 50);
            // Re-indented too: every changed line sits in its function body.
            let n = out[0]
                .after
                .lines()
                .filter(|l| l.starts_with("    x = x * 2") && l.ends_with("# changed"))
                .count();
            assert_eq!(n, 50, "{}", &out[0].after[..400]);
            if round >= 10 {
                times.push(ms);
            }
        }
        println!(
            "parse+apply 50 blocks, 5,000 lines, check_python={check}: p50 {:.2} ms, p99 {:.2} ms",
            pct(&mut times, 0.5),
            pct(&mut times, 0.99)
        );
    }

    // The adversarial case: every window nearly matches.
    let file = "a\n".repeat(40_000);
    let reply = format!(
        "x.txt\n```\n<<<<<<< SEARCH\n{}b\n=======\nc\n>>>>>>> REPLACE\n```\n",
        "a\n".repeat(20_000)
    );
    let opts = ApplyOptions {
        allowed: &["x.txt"],
        check_python: false,
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let parsed = parse_reply(&reply);
        let out = apply_blocks(&parsed.blocks, &mut |_| Some(file.clone()), &opts);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(out.is_err(), "the SEARCH is nowhere in the file");
    }
    println!(
        "adversarial SEARCH (20,000 near-matching lines in a 40,000-line file): p50 {:.1} ms, max {:.1} ms",
        pct(&mut times, 0.5),
        pct(&mut times, 1.0)
    );
}
