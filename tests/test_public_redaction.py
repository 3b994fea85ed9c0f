"""The redaction helper that pre-fills a case's public text (issue 13): what it
removes (Vietnamese phone numbers in their written shapes, e-mails, ID-card
numbers, the caller's name with or without diacritics) and what it must leave
alone (case codes, dates, amounts, short numbers, house numbers)."""

from __future__ import annotations

import pytest

from ivr.cases.models import Case
from ivr.cases.publication import draft_of, personal_data_left
from ivr.cases.redaction import EMAIL, ID_NUMBER, NAME, PHONE, redact


@pytest.mark.parametrize(
    "number",
    [
        "0912345678",
        "0912 345 678",
        "0912.345.678",
        "091-234-5678",
        "0387 654 321",
        "0567.123.456",
        "0778 123 456",
        "0862345678",
        "+84912345678",
        "+84 912 345 678",
        "+84.912.345.678",
        "84912345678",
        "0084 912 345 678",
        "(+84) 912 345 678",
        "+84 (0) 912 345 678",
        "02437655555",
        "024 3765 5555",
        "024.3765.5555",
        "0274 123 4567",
        "0274-123-4567",
        "+84 24 3765 5555",
    ],
)
def test_vietnamese_phone_numbers_are_removed_in_every_written_shape(number: str) -> None:
    text = f"Xin liên hệ số {number}, cảm ơn."
    assert redact(text) == f"Xin liên hệ số {PHONE}, cảm ơn."


def test_a_number_glued_to_words_is_still_removed() -> None:
    assert redact("SĐT:0912345678.") == f"SĐT:{PHONE}."
    assert redact("gọi sđt0912345678 giúp") == f"gọi sđt{PHONE} giúp"


@pytest.mark.parametrize(
    "address",
    ["nguyen.van.an@gmail.com", "an_nguyen+hotline@bactuliem.hanoi.gov.vn", "a-b@x-y.vn"],
)
def test_email_addresses_are_removed(address: str) -> None:
    assert redact(f"Email: {address} (cá nhân)") == f"Email: {EMAIL} (cá nhân)"


def test_an_email_with_digits_is_one_placeholder_not_a_phone() -> None:
    assert redact("viết tới 0912345678@zalo.vn") == f"viết tới {EMAIL}"


@pytest.mark.parametrize("number", ["001203012345", "079085000123", "012345678", "171234567"])
def test_identity_card_numbers_are_removed(number: str) -> None:
    assert redact(f"CCCD số {number} cấp ngày 01/02/2021") == (
        f"CCCD số {ID_NUMBER} cấp ngày 01/02/2021"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Phản ánh mã số 25071234 đã được xử lý.",  # the case code: eight digits
        "Hạn trả lời 15/07/2025, nhận ngày 15.07.2025, sửa ngày 2025-07-20.",
        "Lệ phí 1.500.000 đồng; phạt 150.000.000 đồng theo quy định.",
        "Gọi 1022, 113, 114, 115 hoặc 1900 1234 khi cần.",
        "Nhà số 12 ngõ 345 đường Phạm Văn Đồng, tổ 7.",
        "Đèn đường hỏng từ 19 giờ đến 5 giờ sáng, 3 cột, năm 2025.",
        "Văn bản số 1234/UBND-QLĐT ngày 03/08/2025.",
        "Số 0912345678901 không phải số điện thoại.",  # thirteen digits: no phone
        "Ông Nguyễn Văn Bình, Chủ tịch UBND phường, đã chỉ đạo xử lý.",
    ],
)
def test_codes_dates_amounts_short_numbers_and_officials_are_left_alone(text: str) -> None:
    assert redact(text, names=["Nguyễn Văn An"]) == text


def test_the_callers_name_is_removed_with_or_without_diacritics_and_case() -> None:
    names = ["Nguyễn Văn An"]
    assert redact("Ông Nguyễn Văn An phản ánh", names=names) == f"Ông {NAME} phản ánh"
    assert redact("ông NGUYEN VAN AN phản ánh", names=names) == f"ông {NAME} phản ánh"
    assert redact("anh nguyễn  văn\nan gọi", names=names) == f"anh {NAME} gọi"
    # Typed without diacritics on the case, written with them in the text.
    assert redact("bà Trần Thị Hà ở tổ 5", names=["tran thi ha"]) == f"bà {NAME} ở tổ 5"
    # Part of a longer name is not this person.
    assert redact("Nguyễn Văn Anh phản ánh", names=names) == "Nguyễn Văn Anh phản ánh"


def test_a_one_word_or_empty_name_removes_nothing() -> None:
    # "An" is also a word ("an toàn"): a single given name is left to the supervisor.
    assert redact("Bảo đảm an toàn cho An", names=["An", "", "  "]) == ("Bảo đảm an toàn cho An")


def test_everything_at_once_keeps_the_rest_of_the_text() -> None:
    text = (
        "Ông Lê Văn Tám (0987 654 321, tam.le@gmail.com, CCCD 001203012345) phản ánh "
        "đèn đường hỏng tại ngõ 5 Đông Ngạc từ 01/07/2025, mã 25070001."
    )
    assert redact(text, names=["Lê Văn Tám"]) == (
        f"Ông {NAME} ({PHONE}, {EMAIL}, CCCD {ID_NUMBER}) phản ánh "
        "đèn đường hỏng tại ngõ 5 Đông Ngạc từ 01/07/2025, mã 25070001."
    )


# --- the draft a supervisor edits, and the last check before publishing ------------


def _case(**fields: object) -> Case:
    values: dict[str, object] = {"caller_number": "+84912000678", "caller_name": "Nguyễn Văn An",
                                 "summary": "", "answer": "", "public_title": "",
                                 "public_text": "", "public_answer": ""}  # fmt: skip
    values.update(fields)
    return Case(**values)


def test_the_draft_is_the_summary_and_answer_without_personal_data() -> None:
    case = _case(
        summary="Ông Nguyễn Văn An (0912 000 678) phản ánh đèn đường hỏng. Đã 3 ngày chưa sửa.",
        answer="Đã sửa đèn ngày 05/07/2025, đã báo ông An qua an@gmail.com.",
    )
    draft = draft_of(case)
    assert draft.title == f"Ông {NAME} ({PHONE}) phản ánh đèn đường hỏng."
    assert draft.text.endswith("Đã 3 ngày chưa sửa.") and "0912" not in draft.text
    assert draft.answer == f"Đã sửa đèn ngày 05/07/2025, đã báo ông An qua {EMAIL}."


def test_a_draft_starts_from_the_texts_already_published() -> None:
    case = _case(summary="Nguyễn Văn An gọi", public_title="T", public_text="X", public_answer="Y")
    assert (draft_of(case).title, draft_of(case).text, draft_of(case).answer) == ("T", "X", "Y")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Gọi lại 0912 000 678", ["the caller's phone number"]),
        ("Gọi lại +84 912.000.678", ["the caller's phone number"]),
        ("Ông nguyen van an phản ánh", ["the caller's name"]),
        ("Liên hệ phường: 024 3765 5555", []),  # the ward's office may be published
        ("Đèn đường hỏng, mã 25070001", []),
    ],
)
def test_the_callers_own_number_or_name_blocks_publication(text: str, found: list[str]) -> None:
    assert personal_data_left(_case(), "Tiêu đề", text) == found


def test_a_pseudonymised_number_blocks_nothing() -> None:
    # Its hex digits, run together, happen to be a number in the text.
    case = _case(caller_number="anon:1234abcd5678efab90abcdef")
    assert personal_data_left(case, "Văn bản số 1234567890 của phường") == []
