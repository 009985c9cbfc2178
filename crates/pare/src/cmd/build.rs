//! `pare build` and `pare why`.

#[derive(clap::Args, Debug)]
pub struct Args {}

#[derive(clap::Args, Debug)]
pub struct WhyArgs {}

pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("pare build is not available yet")
}

pub fn why(_args: WhyArgs) -> anyhow::Result<u8> {
    anyhow::bail!("pare why is not available yet")
}
