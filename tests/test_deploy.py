from tests.factories import run_manage


def test_check_deploy_is_clean_with_production_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY="a-long-random-production-secret-key-0123456789abcdefghijklmnop",
        DJANGO_HTTPS="1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_a_bad_setting_value_names_the_variable():
    result = run_manage("check", DJANGO_SECRET_KEY="x" * 60, MAX_ACTIVE_GENERATIONS_PER_USER="lots")
    assert result.returncode != 0
    assert "MAX_ACTIVE_GENERATIONS_PER_USER must be a whole number" in result.stderr


def test_a_price_of_zero_is_refused_at_start():
    # Every submit would otherwise be a 500: the ledger refuses to charge nothing.
    for name, least in (
        ("PRICE_STD_CENTS_PER_SECOND", "1"),
        ("PRICE_FAST_CENTS_PER_SECOND", "1"),
        ("PRICE_OMNI_STD_CENTS_PER_SECOND", "0.001"),
        ("PRICE_OMNI_FAST_CENTS_PER_SECOND", "0.001"),
    ):
        result = run_manage("check", DJANGO_SECRET_KEY="x" * 60, **{name: "0"})
        assert result.returncode != 0
        assert f"{name} must be at least {least}, not 0" in result.stderr


def test_make_runs_dev_env_is_read_beneath_the_environment_and_never_with_debug_off(tmp_path):
    """A second terminal beside `make run` takes var/dev.env; the real environment wins, and
    DJANGO_DEBUG=0 ignores the file, so production still needs its own secret (issue #15)."""
    (tmp_path / "dev.env").write_text("# make run\nDJANGO_DEBUG=1\nSHORTAPI_KEY=from-the-file\n")
    beside = {"SEEDANCE_VAR_DIR": str(tmp_path), "SEEDANCE_DEV_ENV": ""}
    show = [
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.DEBUG, settings.SHORTAPI_KEY)",
    ]

    assert run_manage(*show, **beside).stdout.split() == ["True", "from-the-file"]
    assert run_manage(*show, SHORTAPI_KEY="mine", **beside).stdout.split() == ["True", "mine"]
    refused = run_manage("check", DJANGO_DEBUG="0", **beside)
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in refused.stderr
    production = run_manage(*show, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 60, **beside)
    assert production.stdout.split() == ["False"], production.stderr
