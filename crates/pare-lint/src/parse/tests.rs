//! The parser on continuations, comments, directives, heredocs, flags and errors.

use super::*;

#[test]
fn continuation_and_comments() {
    let d = parse("FROM a:1\nRUN echo a \\\n# c\n  && echo b\nCMD [\"x\"]\n").unwrap();
    assert_eq!(d.instructions.len(), 3);
    assert_eq!(d.instructions[1].line, 2);
    assert_eq!(d.instructions[1].end_line, 4);
    assert!(d.instructions[1].args.contains("&& echo b"));
    assert_eq!(
        d.instructions[2].exec.as_deref(),
        Some(&["x".to_string()][..])
    );
    assert_eq!(d.comments[0].line, 3);
}

#[test]
fn escape_directive() {
    let d = parse("# escape=`\nFROM a:1\nRUN echo a `\n  b\n").unwrap();
    assert_eq!(d.escape, '`');
    assert_eq!(d.instructions[1].args, "echo a   b");
}

#[test]
fn heredocs() {
    let src = "FROM a:1\nRUN <<EOF cat && <<-'E2' cat\nline1\nEOF\n\tline2\n\tE2\nCOPY <<EOF /x\nhi\nEOF\nUSER 1\n";
    let d = parse(src).unwrap();
    let r = &d.instructions[1];
    assert_eq!(r.heredocs.len(), 2);
    assert_eq!(r.heredocs[0].body, "line1");
    assert!(r.heredocs[1].quoted && r.heredocs[1].strip_tabs);
    assert_eq!(r.heredocs[1].body, "line2");
    assert_eq!(d.instructions[2].heredocs[0].body, "hi");
    assert_eq!(d.instructions[3].line, 10);
}

#[test]
fn heredoc_mid_command_and_empty_exec() {
    let d = parse(
        "FROM a:1\nRUN mkdir /x && cat <<'EOF' > /x/f\n[target.'cfg(x)']\nEOF\nENTRYPOINT []\n",
    )
    .unwrap();
    assert_eq!(d.instructions[1].heredocs[0].body, "[target.'cfg(x)']");
    assert_eq!(d.instructions[2].exec.as_deref(), Some(&[][..]));
}

#[test]
fn flags_and_onbuild() {
    let d = parse("FROM --platform=linux/amd64 a:1 AS b\nONBUILD RUN --mount=type=cache,target=/x apt-get update\n").unwrap();
    assert_eq!(
        d.instructions[0].flag_value("platform"),
        Some("linux/amd64")
    );
    let inner = d.instructions[1].onbuild.as_deref().unwrap();
    assert_eq!(inner.keyword, "RUN");
    assert_eq!(inner.flags[0].name, "mount");
}

#[test]
fn errors_have_positions() {
    match parse("FROM a\n\nINVALID woops\n") {
        Err(ParseError::Syntax { line, .. }) => assert_eq!(line, 3),
        other => panic!("{other:?}"),
    }
    assert!(parse("FROM a\nRUN --mount=type=bind echo\n").is_err());
    assert!(parse("FROM a\nRUN <<EOF\nno end\n").is_err());
}
