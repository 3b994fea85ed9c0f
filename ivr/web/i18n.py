"""UI language: Vietnamese by default, English available.

Templates and handlers write English source text (``_("Calls")``); the
Vietnamese catalogue below translates it. A unit test checks that every text
used in the templates has its Vietnamese form, so a page never shows half
English to a Vietnamese user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

LANGUAGES = ("vi", "en")

VI: dict[str, str] = {
    "Hotline console": "Bảng điều khiển đường dây nóng",
    "Sign in": "Đăng nhập",
    "Sign out": "Đăng xuất",
    "User name": "Tên đăng nhập",
    "Password": "Mật khẩu",
    "Wrong user name or password.": "Sai tên đăng nhập hoặc mật khẩu.",
    "Too many failed sign-ins. Try again in {seconds} s.": (
        "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {seconds} giây."
    ),
    "Wallboard": "Bảng theo dõi",
    "Agent console": "Bàn điện thoại viên",
    "Calls": "Cuộc gọi",
    "Cases": "Phản ánh",
    "Statistics": "Thống kê",
    "Administration": "Quản trị",
    "Users": "Người dùng",
    "Audit log": "Nhật ký truy cập",
    "Transcription jobs": "Tác vụ chuyển lời thoại",
    "Jobs that failed show the reason; they are not retried.": (
        "Tác vụ lỗi hiển thị lý do và không được thử lại."
    ),
    "Attempts": "Số lần thử",
    "Reason": "Lý do",
    "Created": "Tạo lúc",
    "No jobs waiting or failed.": "Không có tác vụ đang chờ hay bị lỗi.",
    "Configuration": "Cấu hình",
    "Access denied": "Không có quyền truy cập",
    "Your role does not allow this page.": "Vai trò của bạn không được phép xem trang này.",
    "Not found": "Không tìm thấy",
    "Bad request": "Yêu cầu không hợp lệ",
    "The form has expired; reload the page and try again.": (
        "Biểu mẫu đã hết hạn; vui lòng tải lại trang và thử lại."
    ),
    "Back": "Quay lại",
    "Live": "Trực tiếp",
    "Connected": "Đã kết nối",
    "Reconnecting…": "Đang kết nối lại…",
    "Queue": "Hàng chờ",
    "Callers waiting": "Người gọi đang chờ",
    "Longest wait": "Chờ lâu nhất",
    "Answered today": "Đã trả lời hôm nay",
    "Abandoned today": "Bỏ máy hôm nay",
    "Service level": "Mức phục vụ",
    "Agents": "Điện thoại viên",
    "State": "Trạng thái",
    "Time in state": "Thời gian",
    "Calls taken": "Số cuộc đã nghe",
    "No callers waiting": "Không có người gọi đang chờ",
    "Alert: long wait": "Cảnh báo: chờ quá lâu",
    "Alert: many abandoned calls": "Cảnh báo: nhiều cuộc gọi bỏ máy",
    "idle": "sẵn sàng",
    "ringing": "đang đổ chuông",
    "talking": "đang nghe máy",
    "paused": "tạm nghỉ",
    "wrapup": "hoàn tất cuộc gọi",
    "unavailable": "không kết nối",
    "Pause": "Tạm nghỉ",
    "Resume": "Tiếp tục",
    "Log off": "Cho nghỉ ca",
    "Listen": "Nghe",
    "Whisper": "Nhắc",
    "Barge in": "Tham gia",
    "Supervisor phone": "Máy của giám sát viên",
    "Your queues": "Hàng chờ của bạn",
    "Log in to my queues": "Vào hàng chờ",
    "Log out of my queues": "Rời hàng chờ",
    "Pause reason": "Lý do tạm nghỉ",
    "Hotline": "Đường dây nóng",
    "Hotline (supervisors)": "Đường dây nóng (giám sát viên)",
    "All hotlines": "Tất cả đường dây nóng",
    "Unknown pause reason; choose one from the list ({codes}).": (
        "Lý do tạm nghỉ không hợp lệ; xin chọn trong danh sách ({codes})."
    ),
    "Not in any queue": "Chưa vào hàng chờ nào",
    "Waiting for calls": "Đang chờ cuộc gọi",
    "Incoming call": "Cuộc gọi đến",
    "Caller": "Người gọi",
    "Earlier calls": "Các cuộc gọi trước",
    "Open cases": "Phản ánh đang xử lý",
    "None": "Không có",
    "Open a case": "Mở phản ánh",
    "Caller name": "Họ tên người gọi",
    "Area": "Địa bàn",
    "Topic": "Lĩnh vực",
    "Severity": "Mức độ",
    "urgent": "khẩn",
    "normal": "bình thường",
    "complex": "phức tạp",
    "Content": "Nội dung",
    "Save case": "Lưu phản ánh",
    "Case saved with code": "Đã lưu phản ánh mã số",
    "Wrap-up": "Hoàn tất",
    "Search": "Tìm kiếm",
    "From": "Từ ngày",
    "To": "Đến ngày",
    "Number": "Số điện thoại",
    "Agent": "Điện thoại viên",
    "Status": "Trạng thái",
    "Code": "Mã số",
    "Any": "Tất cả",
    "Started": "Bắt đầu",
    "Outcome": "Kết quả",
    "Route": "Chuyển đến",
    "Keys": "Phím bấm",
    "Answered by": "Người nghe",
    "Received": "Tiếp nhận",
    "Due": "Hạn trả lời",
    "Summary": "Tóm tắt",
    "Transcript": "Bản ghi lời nói",
    "Official": "Cán bộ",  # who answered: agent or chairman (the transcript's label)
    "From the start of the recording": "Tính từ đầu bản ghi âm",
    "No transcript yet": "Chưa có bản ghi lời nói",
    "Words in summary or transcript": "Từ trong tóm tắt hoặc bản ghi lời nói",
    "Recordings": "Ghi âm",
    "Download": "Tải về",
    "History": "Lịch sử",
    "Export CSV": "Xuất CSV",
    "Export Excel": "Xuất Excel",
    "No results": "Không có kết quả",
    "Call": "Cuộc gọi",
    "Case": "Phản ánh",
    "Responsible unit": "Đơn vị xử lý",
    "Assign": "Giao xử lý",
    "Change status": "Chuyển trạng thái",
    "Note": "Ghi chú",
    "Save": "Lưu",
    "Update": "Cập nhật",
    "received": "chờ tiếp nhận",
    "classified": "chờ xử lý",
    "assigned": "chuyển xử lý",
    "in_progress": "đang xử lý",
    "answered": "đã xử lý",
    "closed": "đã đóng",
    "rejected": "từ chối",
    "Calls per day": "Số cuộc gọi theo ngày",
    "Calls per hour": "Số cuộc gọi theo giờ",
    "Calls by area": "Cuộc gọi theo địa bàn",
    "Cases by topic": "Phản ánh theo lĩnh vực",
    "Queue calls: answered and abandoned": "Cuộc gọi vào hàng chờ: được trả lời và bỏ máy",
    "Cases on time and late per unit": "Phản ánh đúng hạn và trễ hạn theo đơn vị",
    "Total calls": "Tổng số cuộc gọi",
    "Distinct callers": "Số người gọi khác nhau",
    "Average wait": "Thời gian chờ trung bình",
    "Answered": "Được trả lời",
    "Abandoned": "Bỏ máy",
    "On time": "Đúng hạn",
    "Late": "Trễ hạn",
    "Print": "In báo cáo",
    "Daily report": "Báo cáo ngày",
    "Role": "Vai trò",
    "admin": "quản trị viên",
    "supervisor": "giám sát viên",
    "agent": "điện thoại viên",
    "Display name": "Tên hiển thị",
    "Active": "Đang hoạt động",
    "Disabled": "Đã khóa",
    "Disable": "Khóa",
    "Enable": "Mở khóa",
    "Add user": "Thêm người dùng",
    "When": "Thời điểm",
    "Who": "Người thực hiện",
    "Action": "Thao tác",
    "Target": "Đối tượng",
    "Detail": "Chi tiết",
    "Client address": "Địa chỉ truy cập",
    "Areas": "Địa bàn",
    "Shortcut": "Phím tắt",
    "Chairman": "Chủ tịch",
    "Queues": "Hàng chờ",
    "Shift roster": "Lịch trực ca",
    "Shift": "Ca",
    "Hours": "Giờ",
    "Holidays": "Ngày nghỉ lễ",
    "Changes to areas, queues and the roster are made in the config file, then "
    "checked with hotline check-config and applied with a reload.": (
        "Địa bàn, hàng chờ và lịch trực được sửa trong tệp cấu hình, kiểm tra bằng "
        "hotline check-config rồi áp dụng bằng lệnh tải lại."
    ),
    "The configuration was checked, saved and applied.": (
        "Cấu hình đã được kiểm tra, lưu và áp dụng."
    ),
    "Previous version kept as": "Bản trước được lưu tại",
    "Asterisk reloaded": "Đã tải lại Asterisk",
    "modules": "mô-đun",
    "files rendered": "tệp đã tạo",
    "Takes effect after a restart of hotline serve": (
        "Có hiệu lực sau khi khởi động lại hotline serve"
    ),
    "The configuration was not saved; nothing changed. Fix these lines:": (
        "Cấu hình chưa được lưu, không có gì thay đổi. Hãy sửa các dòng sau:"
    ),
    "Edit the configuration file": "Sửa tệp cấu hình",
    "Areas and their shortcut keys and chairmen, queues, the shift roster, office hours "
    "and holidays. The text is checked like hotline check-config; when it is valid it is "
    "saved (the previous version is kept) and applied to Asterisk with a reload that does "
    "not drop calls.": (
        "Địa bàn với phím tắt và chủ tịch, hàng chờ, lịch trực ca, giờ làm việc và ngày nghỉ "
        "lễ. Nội dung được kiểm tra như hotline check-config; nếu hợp lệ sẽ được lưu (giữ lại "
        "bản trước) và áp dụng cho Asterisk bằng lệnh tải lại không làm rớt cuộc gọi."
    ),
    "Check and apply": "Kiểm tra và áp dụng",
    "This process does not own the config.": "Tiến trình này không quản lý tệp cấu hình.",
    "Done": "Đã thực hiện",
    "seconds": "giây",
    # Legal hold and retention (case page).
    "Legal hold": "Lưu giữ theo yêu cầu pháp lý",
    "On since {at}, by {by}": "Đang áp dụng từ {at}, do {by} đặt",
    "Off": "Không",
    "Retention": "Thời hạn lưu trữ",
    "Text erased under the retention limits on {at}": (
        "Nội dung đã được xóa theo thời hạn lưu trữ vào {at}"
    ),
    "While a case is under legal hold, retention erases nothing linked to it: its calls, "
    "recordings, transcripts, numbers and text are kept.": (
        "Khi phản ánh đang được lưu giữ theo yêu cầu pháp lý, việc xóa theo thời hạn lưu trữ "
        "không động đến dữ liệu nào liên quan: cuộc gọi, bản ghi âm, bản ghi lời nói, số "
        "điện thoại và nội dung đều được giữ nguyên."
    ),
    "Set legal hold": "Đặt lưu giữ pháp lý",
    "Release legal hold": "Gỡ lưu giữ pháp lý",
}


def translator(language: str) -> Callable[..., str]:
    """``_("text", **values)`` in ``language``; English is the source text."""
    catalogue = VI if language == "vi" else {}

    def translate(text: str, **values: object) -> str:
        result = catalogue.get(text, text)
        return result.format(**values) if values else result

    return translate
