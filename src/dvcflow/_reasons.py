"""Refusal reason codes with their Vietnamese and English messages."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["REASONS", "Reason", "message"]


@attrs.frozen
class Reason:
    """A machine-readable refusal reason and what it says to people."""

    code: str
    vi: str
    en: str


_TABLE = [
    (
        "invalid_in_state",
        "Không thể thực hiện ở trạng thái hiện tại của hồ sơ",
        "not possible in the dossier's current state",
    ),
    (
        "unknown_trigger",
        "Thao tác không có trong quy trình của thủ tục",
        "the procedure's lifecycle has no such trigger",
    ),
    (
        "role_missing",
        "Người thực hiện không có vai trò cần thiết",
        "the actor lacks a role this needs",
    ),
    ("not_owner", "Hồ sơ không thuộc người nộp này", "the dossier belongs to another applicant"),
    ("wrong_agency", "Hồ sơ thuộc cơ quan khác", "the dossier belongs to another agency"),
    (
        "channel_not_offered",
        "Thủ tục không tiếp nhận qua kênh này",
        "the procedure does not take dossiers through this channel",
    ),
    (
        "applicant_type_not_accepted",
        "Thủ tục không áp dụng cho đối tượng này",
        "the procedure does not accept this type of applicant",
    ),
    (
        "contact_missing",
        "Chưa đăng ký số điện thoại di động và thư điện tử",
        "a mobile number and an email must be registered",
    ),
    (
        "vneid_required",
        "Cần tài khoản định danh điện tử VNeID đã xác thực",
        "a verified VNeID account is required",
    ),
    ("applicant_missing", "Thiếu thông tin người nộp hồ sơ", "the applicant is missing"),
    ("components_missing", "Thiếu thành phần hồ sơ bắt buộc", "mandatory documents are missing"),
    ("form_invalid", "Tờ khai chưa hợp lệ", "the form does not match the procedure's fields"),
    ("case_unknown", "Trường hợp không có trong thủ tục", "the procedure has no such case"),
    (
        "delivery_not_offered",
        "Thủ tục không trả kết quả theo hình thức này",
        "the procedure does not return results this way",
    ),
    ("delivery_missing", "Chưa chọn hình thức nhận kết quả", "choose how the result is returned"),
    (
        "address_missing",
        "Thiếu địa chỉ nhận kết quả qua bưu chính",
        "a postal return needs a delivery address",
    ),
    (
        "exemption_unknown",
        "Đối tượng miễn, giảm không có trong thủ tục",
        "the procedure has no such exemption",
    ),
    ("fees_unpaid", "Chưa hoàn thành nghĩa vụ tài chính", "fees are not paid"),
    (
        "fee_not_due",
        "Chưa đến thời điểm thu phí, lệ phí",
        "the fee is collected later (with the result)",
    ),
    ("no_fee_due", "Không có khoản phí, lệ phí cần nộp", "no such fee is due"),
    (
        "amount_mismatch",
        "Số tiền không khớp với số phải nộp",
        "the amount does not match what is due",
    ),
    (
        "online_payment_not_offered",
        "Thủ tục không hỗ trợ thanh toán trực tuyến",
        "the procedure offers no online payment",
    ),
    (
        "presence_not_allowed",
        "Thủ tục toàn trình không yêu cầu có mặt trực tiếp",
        "a full-process service requires no visit",
    ),
    ("reason_missing", "Cần nêu rõ lý do", "a written reason is required"),
    ("legal_basis_missing", "Cần nêu căn cứ pháp lý", "a legal basis is required"),
    ("payload_invalid", "Dữ liệu kèm theo không hợp lệ", "the command's data is invalid"),
    (
        "guidance_already_given",
        "Đã hướng dẫn bổ sung một lần khi tiếp nhận",
        "written guidance was already given once at reception",
    ),
    (
        "supplement_missing",
        "Người nộp chưa bổ sung hồ sơ",
        "the applicant has not supplemented the dossier yet",
    ),
    ("not_yet_due", "Chưa đến thời hạn", "the deadline has not passed yet"),
    ("specialist_missing", "Chưa phân công công chức xử lý", "name the specialist to assign"),
    ("steps_pending", "Còn bước xử lý chưa hoàn thành", "processing steps are still pending"),
    (
        "document_not_approved",
        "Văn bản chưa được lãnh đạo phê duyệt",
        "the document needs a leader's sign-off first",
    ),
    (
        "reschedule_limit_reached",
        "Đã gia hạn đủ số lần cho phép",
        "the dossier was rescheduled as often as allowed",
    ),
    (
        "not_before_due",
        "Chỉ được gia hạn trước thời hạn giải quyết",
        "a reschedule must come before the due date",
    ),
    ("invalid_due_date", "Thời hạn mới không hợp lệ", "the new due date is not valid"),
    ("no_due_date", "Hồ sơ không có thời hạn giải quyết", "the dossier has no due date"),
    ("result_missing", "Chưa có kết quả giải quyết", "the result is missing"),
    ("result_unsigned", "Kết quả chưa được ký số", "the result must be digitally signed"),
    (
        "receiver_missing",
        "Chưa ghi nhận thông tin người nhận kết quả",
        "record who receives the result",
    ),
]

REASONS: Mapping[str, Reason] = {code: Reason(code, vi, en) for code, vi, en in _TABLE}
"""Every reason code the kernel gives, with its messages."""


def message(code: str, locale: str = "en") -> str:
    """The message for ``code`` in ``locale`` (``"vi"`` or ``"en"``)."""
    reason = REASONS[code]
    return reason.vi if locale == "vi" else reason.en
