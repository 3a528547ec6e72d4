"""`convspec new-backend NAME [--dir PATH]`: write a complete, installable backend plugin package."""

from __future__ import annotations

import click

from ..scaffold import ScaffoldError, check_name, generate, module_name


@click.command("new-backend")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=True, dir_okay=True),
    default=None,
    metavar="PATH",
    help="Where to write the package (must not exist or be empty)  [default: ./convspec-NAME]",
)
def COMMAND(name, directory):
    """Write a backend plugin package NAME: pyproject with the `convspec` entry point, a backend with
    every op stubbed "unsupported", a README and a conformance test."""
    try:
        check_name(name)
    except ScaffoldError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    from .. import plugins

    reg = plugins.load()
    if name in reg.backends:
        raise click.BadParameter(
            f"a backend named {name!r} is already registered (by plugin {reg.origins[name]!r}); choose another name",
            param_hint="NAME",
        )
    try:
        root = generate(name, directory)
    except ScaffoldError as exc:
        raise click.BadParameter(str(exc), param_hint="--dir") from None
    click.echo(f"wrote {root}/ (package convspec-{name}, module {module_name(name)}, backend {name!r})")
    click.echo("next:")
    click.echo(f"  pip install -e {root}")
    click.echo(f"  convspec run --backend {name}        # every case 'unsupported' until you implement ops")
    click.echo(f"  pytest {root} --convspec-backend {name}")
