//! The shell tokenizer behind RUN (`pare_lint::shell::parse`) and the queries rules make on it.

/// The body: the input (lossy UTF-8) tokenized as a RUN shell script, with the flag, argument
/// and subcommand queries rules make run on every command, plus the heredoc, JSON-array and
/// variable-expansion helpers.
pub fn run(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let script = pare_lint::shell::parse(&src);
    for c in &script.commands {
        let _ = (c.has_flag("-y"), c.has_flag("--no-cache"), c.has_flag("-qy"));
        let _ = (c.subcommand(), c.has_arg("install"), c.positional().count());
    }
    let _ = pare_lint::parse::heredoc_specs(&src);
    let _ = pare_lint::parse::parse_json_array(&src);
    let _ = pare_lint::parse::expand(&src, &|name| (name.len() % 2 == 0).then(|| name.repeat(2)));
}
