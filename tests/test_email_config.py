"""The ``email:`` section (issue 13): checked where the file is loaded, errors
naming file, line and field; the SMTP password masked in the console."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import ConfigError, load_config
from ivr.config.edit import check_config_text
from ivr.config.email import EmailSection, check_email_address
from ivr.config.secret_mask import MASK, mask_secrets, unmask_secrets

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bac-tu-liem.yaml"


def _write(tmp_path: Path, section: str) -> tuple[Path, int]:
    """The example with ``section`` appended; returns the file and the line of ``email:``."""
    base = EXAMPLE.read_text(encoding="utf-8").rstrip("\n") + "\n"
    path = tmp_path / "hotline.yaml"
    path.write_text(base + section, encoding="utf-8")
    # The example's relative paths (prompts, var) resolve from tmp_path: fine here.
    return path, base.count("\n") + 1


def _error(tmp_path: Path, section: str) -> tuple[str, int]:
    path, first = _write(tmp_path, section)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value), first


GOOD = """email:
  enabled: true
  host: smtp.bactuliem.gov.vn
  security: starttls
  username: hotline
  password: "s3cret pass#word"
  from_address: hotline@bactuliem.gov.vn
  from_name: Đường dây nóng Bắc Từ Liêm
  reply_to: tiepdan@bactuliem.gov.vn
"""


def test_a_full_email_section_loads_with_the_usual_port(tmp_path: Path) -> None:
    path, _ = _write(tmp_path, GOOD)
    email = load_config(path).email
    assert email.enabled and email.smtp_port == 587
    assert email.password == "s3cret pass#word"
    assert email.from_name == "Đường dây nóng Bắc Từ Liêm"
    assert "s3cret" not in repr(email)  # a logged config never shows it


def test_without_a_section_email_is_off() -> None:
    assert load_config(EXAMPLE).email.enabled is False


def test_an_address_with_a_line_break_is_refused_at_its_line(tmp_path: Path) -> None:
    section = GOOD.replace(
        "reply_to: tiepdan@bactuliem.gov.vn", 'reply_to: "tiepdan@bactuliem.gov.vn\\nBcc: x@y.vn"'
    )
    message, first = _error(tmp_path, section)
    assert f"hotline.yaml:{first + 8}: email.reply_to: " in message
    assert "line breaks" in message


@pytest.mark.parametrize(
    "address",
    ["hotline", "a@b", "Tiếp dân <td@bactuliem.gov.vn>", "a@b.vn, c@d.vn", "a b@c.vn", "a@-x.vn"],
)
def test_only_one_plain_mailbox_is_an_address(tmp_path: Path, address: str) -> None:
    section = GOOD.replace("from_address: hotline@bactuliem.gov.vn", f'from_address: "{address}"')
    message, first = _error(tmp_path, section)
    assert f"hotline.yaml:{first + 6}: email.from_address: " in message


def test_enabled_without_a_sender_address_names_the_field(tmp_path: Path) -> None:
    message, first = _error(tmp_path, "email:\n  enabled: true\n  host: 127.0.0.1\n")
    assert f"hotline.yaml:{first}: email.from_address: " in message
    assert "address mail is sent from" in message


def test_a_password_in_clear_to_a_remote_server_is_refused(tmp_path: Path) -> None:
    section = GOOD.replace("security: starttls", "security: none")
    message, first = _error(tmp_path, section)
    assert f"hotline.yaml:{first + 5}: email.password: " in message
    assert "starttls or tls" in message
    assert "s3cret" not in message  # the error never repeats a secret


def test_a_password_in_clear_to_this_machine_is_allowed(tmp_path: Path) -> None:
    section = GOOD.replace("security: starttls", "security: none").replace(
        "host: smtp.bactuliem.gov.vn", "host: 127.0.0.1"
    )
    path, _ = _write(tmp_path, section)
    assert load_config(path).email.smtp_port == 25


def test_username_without_password_is_refused(tmp_path: Path) -> None:
    section = GOOD.replace('  password: "s3cret pass#word"\n', "")
    message, first = _error(tmp_path, section)
    assert f"hotline.yaml:{first}: email.password: " in message
    assert "give both or neither" in message


def test_a_password_with_a_line_break_is_refused_without_showing_it(tmp_path: Path) -> None:
    section = GOOD.replace('"s3cret pass#word"', '"s3cret\\r\\nRCPT TO:<x@y.vn>"')
    message, first = _error(tmp_path, section)
    assert f"hotline.yaml:{first + 5}: email.password: " in message
    assert "s3cret" not in message and "RCPT" not in message


def test_a_password_smtplib_cannot_send_is_refused(tmp_path: Path) -> None:
    message, first = _error(tmp_path, GOOD.replace('"s3cret pass#word"', '"mật khẩu"'))
    assert f"hotline.yaml:{first + 5}: email.password: only ASCII" in message


def test_unknown_security_is_refused(tmp_path: Path) -> None:
    message, first = _error(tmp_path, GOOD.replace("security: starttls", "security: ssl"))
    assert f"hotline.yaml:{first + 3}: email.security: " in message


def test_the_smtp_password_is_masked_in_the_console_and_kept_on_save(tmp_path: Path) -> None:
    path, first = _write(tmp_path, GOOD)
    stored = path.read_text(encoding="utf-8")
    shown = mask_secrets(stored)
    assert "s3cret" not in shown
    assert shown.splitlines()[first + 4] == f'  password: "{MASK}"'
    assert shown.count("\n") == stored.count("\n")  # errors keep their line numbers
    assert unmask_secrets(shown, stored, path) == stored


def test_the_address_type_is_exported_for_other_sections() -> None:
    assert check_email_address("ubnd.dongngac@hanoi.gov.vn") == "ubnd.dongngac@hanoi.gov.vn"
    with pytest.raises(ValueError):
        check_email_address("ubnd@hanoi.gov.vn\r\n")
    assert EmailSection().enabled is False


def test_the_console_may_not_move_the_outbox(tmp_path: Path) -> None:
    """The outbox is a file the service writes: an edit from the console could
    otherwise have it append mail to any file it can write."""
    path, first = _write(tmp_path, GOOD + "  outbox_path: ../var/email-outbox.jsonl\n")
    current = load_config(path)
    edited = path.read_text(encoding="utf-8").replace(
        "outbox_path: ../var/email-outbox.jsonl", "outbox_path: /root/.bashrc"
    )
    with pytest.raises(ConfigError) as caught:
        check_config_text(path, edited, current)
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (first + 9, "email.outbox_path")
    assert "may not be changed from the console" in problem.message
