//! Where the base image ends (`--keep-base`) and the squashed image's history.

use serde_json::{Value, json};

/// Which bottom layers `pare squash` keeps as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepBase {
    /// Squash every layer.
    #[default]
    None,
    /// The base image's layers, found in the history (see [`base_layers`]).
    Auto,
    /// The bottom N layers (docker-squash's "squash the last M layers", counted from the
    /// bottom instead).
    Layers(usize),
}

impl std::str::FromStr for KeepBase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(KeepBase::Auto),
            n => n
                .parse::<usize>()
                .map(KeepBase::Layers)
                .map_err(|_| "expected a number of layers or `auto`".to_string()),
        }
    }
}

fn is_empty_layer(h: &Value) -> bool {
    h.get("empty_layer").and_then(Value::as_bool) == Some(true)
}

/// Whether a history step is how a base image usually ends or starts: its `CMD` or
/// `ENTRYPOINT` (classic builder `#(nop)` form and BuildKit form), a root filesystem added
/// with `ADD file:…`, or a `docker import`.
fn ends_base(h: &Value) -> bool {
    let by = h.get("created_by").and_then(Value::as_str).unwrap_or("");
    let step = by
        .trim_start_matches("/bin/sh -c ")
        .trim_start_matches("#(nop)")
        .trim_start();
    let comment = h.get("comment").and_then(Value::as_str).unwrap_or("");
    step.starts_with("CMD ")
        || step.starts_with("ENTRYPOINT ")
        || step.starts_with("ADD file:")
        || comment.starts_with("Imported from")
}

/// How many bottom layers to keep, out of `layers`, by `keep`.
///
/// `Auto`: the base image ends at the last history step that `ends_base` matches and that
/// has a layer-creating step after it (a base image's last step is usually its `CMD`; a
/// debootstrapped or imported base is one `ADD file:`/import layer). The layers created up to
/// that step are the base. Error when no such step exists or the history does not list one
/// non-empty step per layer.
pub fn base_layers(history: &[Value], layers: usize, keep: KeepBase) -> Result<usize, String> {
    let n = match keep {
        KeepBase::None => return Ok(0),
        KeepBase::Layers(n) => n,
        KeepBase::Auto => {
            let non_empty = history.iter().filter(|h| !is_empty_layer(h)).count();
            if non_empty != layers {
                return Err(format!(
                    "the history lists {non_empty} layer-creating steps for {layers} layers; give --keep-base N"
                ));
            }
            let mut created = 0usize;
            let mut base = None;
            for h in history {
                if !is_empty_layer(h) {
                    created += 1;
                }
                if ends_base(h) && created < layers {
                    base = Some(created);
                }
            }
            base.filter(|b| *b > 0).ok_or_else(|| {
                "no base image step (CMD, ENTRYPOINT, ADD file:, import) found in the history; give --keep-base N".to_string()
            })?
        }
    };
    if n >= layers {
        return Err(format!(
            "--keep-base {n} leaves nothing to squash: the image has {layers} layers"
        ));
    }
    Ok(n)
}

/// The squashed image's history: every step kept (so `docker history` still shows how the
/// image was made), the steps above the base marked `empty_layer`, and one step for the
/// squashed layer. Entries beyond the `base` layer-creating steps count as squashed.
pub fn squashed_history(
    history: &[Value],
    base: usize,
    squashed: usize,
    source: &str,
    created: &str,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(history.len() + 1);
    let mut created_layers = 0usize;
    for h in history {
        let mut h = h.clone();
        if !is_empty_layer(&h) {
            if created_layers >= base {
                h["empty_layer"] = Value::Bool(true);
            }
            created_layers += 1;
        }
        out.push(h);
    }
    let comment = format!(
        "pare squash: {squashed} layer{} of {source} merged into this one",
        if squashed == 1 { "" } else { "s" }
    );
    out.push(json!({ "created": created, "created_by": "pare squash", "comment": comment }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(by: &str, empty: bool) -> Value {
        if empty {
            json!({ "created_by": by, "empty_layer": true })
        } else {
            json!({ "created_by": by })
        }
    }

    #[test]
    fn auto_finds_the_base_cmd_and_the_import() {
        let h = vec![
            step("/bin/sh -c #(nop) ADD file:abc in / ", false),
            step("/bin/sh -c #(nop)  CMD [\"bash\"]", true),
            step("/bin/sh -c apt-get install -y python3", false),
            step("/bin/sh -c #(nop) COPY file:x in /app", false),
            step("/bin/sh -c #(nop)  CMD [\"python3\"]", true),
        ];
        assert_eq!(base_layers(&h, 3, KeepBase::Auto), Ok(1));
        let imported = vec![
            json!({ "created_by": "", "comment": "Imported from -" }),
            step("RUN /bin/sh -c useradd app # buildkit", false),
            step("CMD [\"app\"]", true),
        ];
        assert_eq!(base_layers(&imported, 2, KeepBase::Auto), Ok(1));
        // A two-layer base ending with its CMD.
        let two = vec![
            step("ADD file:abc in /", false),
            step("RUN apt-get update", false),
            step("CMD [\"bash\"]", true),
            step("RUN make", false),
        ];
        assert_eq!(base_layers(&two, 3, KeepBase::Auto), Ok(2));
    }

    #[test]
    fn auto_and_counts_refuse_what_they_cannot_do() {
        let h = vec![step("RUN a", false), step("RUN b", false)];
        assert!(base_layers(&h, 2, KeepBase::Auto).is_err());
        assert!(
            base_layers(&h, 3, KeepBase::Auto)
                .unwrap_err()
                .contains("2 layer-creating")
        );
        assert!(base_layers(&h, 2, KeepBase::Layers(2)).is_err());
        assert_eq!(base_layers(&h, 2, KeepBase::Layers(1)), Ok(1));
        assert_eq!(base_layers(&h, 2, KeepBase::None), Ok(0));
        assert_eq!("auto".parse(), Ok(KeepBase::Auto));
        assert_eq!("3".parse(), Ok(KeepBase::Layers(3)));
        assert!("x".parse::<KeepBase>().is_err());
    }

    #[test]
    fn history_marks_squashed_steps_empty_and_adds_one() {
        let h = vec![
            step("ADD file:abc in /", false),
            step("CMD [\"bash\"]", true),
            step("RUN a", false),
            step("RUN b", false),
        ];
        let out = squashed_history(&h, 1, 2, "app:1", "2024-01-01T00:00:00Z");
        assert_eq!(out.len(), 5);
        assert!(!is_empty_layer(&out[0]));
        assert!(is_empty_layer(&out[2]) && is_empty_layer(&out[3]));
        let non_empty = out.iter().filter(|h| !is_empty_layer(h)).count();
        assert_eq!(non_empty, 2, "one per layer: the base and the squashed one");
        assert_eq!(out[4]["created_by"], "pare squash");
        assert!(
            out[4]["comment"]
                .as_str()
                .unwrap()
                .contains("2 layers of app:1")
        );
    }
}
