"""Identity from WeCom's directory: the roster's 企业微信账号 column binds members at once, they
are welcomed on their first message, and the directory's changes (a member who left, a renamed
userid) and the application's events follow them. Against the local WeCom
(bot/channels/wecom/local_server.py): encrypted callbacks in, message/send out."""

from datetime import timedelta

from sqlmodel import select

from bot import delivery
from bot.channels.wecom.inbound import CHANNEL
from bot.channels.wecom.local_server import Pusher
from bot.core import onboarding, roster
from storage.models import ChannelAccount, Member, OutboxMessage
from tests.conftest import import_roster
from tests.test_pacing import _announce_to_everyone
from tests.test_wecom import fake, running, say, shown, texts  # noqa: F401 — fixtures

BRANCHES = [["支部", "机关支部"], ["一支部", "否"], ["二支部", "否"]]
PEOPLE = [
    ["编号", "姓名", "支部", "角色", "企业微信账号"],
    ["1", "王五", "一支部", "支部书记", "wangwu"],
    ["2", "赵六", "一支部", "", "ZhaoLiu"],
    ["3", "孙七", "二支部", "管理员", ""],
]


async def wecom_accounts(runtime) -> dict[str, tuple[str, bool, bool]]:
    """Member name → (userid, unseen, unreachable) of their WeCom account."""
    async with runtime.db.session() as session:
        rows = await session.exec(
            select(Member.name, ChannelAccount)
            .join(ChannelAccount, ChannelAccount.member_id == Member.id)
            .where(ChannelAccount.channel == CHANNEL)
        )
        return {
            name: (a.external_id, a.unseen, a.unreachable_since is not None)
            for name, a in rows.all()
        }


async def imported(runtime, people=PEOPLE) -> roster.ImportReport:
    report = await import_roster(runtime, people, BRANCHES)
    assert report.ok, report.problems
    return report


# --- the roster column -----------------------------------------------------------------------


async def test_the_roster_binds_userids_and_a_new_file_moves_them(runtime):
    report = await imported(runtime)
    assert report.wecom_accounts == 2 and "企业微信账号" not in report.ignored_columns
    assert await wecom_accounts(runtime) == {
        "王五": ("wangwu", True, False),
        "赵六": ("ZhaoLiu", True, False),
    }
    # The next file: 王五's userid goes to 孙七, 王五 gets a new one, 赵六's cell is empty.
    again = [row[:] for row in PEOPLE]
    again[1][4], again[2][4], again[3][4] = "wangwu2", "", "wangwu"
    report = await imported(runtime, again)
    assert report.wecom_accounts == 2
    assert await wecom_accounts(runtime) == {
        "王五": ("wangwu2", True, False),
        "赵六": ("ZhaoLiu", True, False),  # an empty cell leaves the account as it was
        "孙七": ("wangwu", True, False),
    }


async def test_english_headers_name_the_column_wecom(runtime):
    people = [["id", "name", "branch", "wecom"], ["1", "Li Lei", "一支部", "lilei"]]
    await imported(runtime, people)
    assert await wecom_accounts(runtime) == {"Li Lei": ("lilei", True, False)}


async def test_two_members_with_one_userid_is_an_import_error_and_nothing_is_written(runtime):
    people = [row[:] for row in PEOPLE]
    people[2][4] = "WANGWU"  # WeCom's userids know no case
    people.append(["4", "周八", "二支部", "", "bad id!"])
    people.append(["5", "陈大姐", "", "", "chendajie"])
    people[0].append("类别")
    people[-1].append("市场经营户")
    report = await import_roster(runtime, people, BRANCHES)
    assert [(p.row, p.reason) for p in report.problems] == [
        (2, "duplicate_wecom_id"),
        (3, "duplicate_wecom_id"),
        (5, "bad_wecom_id"),
        (6, "outsider_with_wecom_id"),
    ]
    assert await wecom_accounts(runtime) == {}
    said, english = (
        runtime.messages.render(
            locale,
            "cli_roster_report.txt",
            report=report,
            wecom_id_longest=roster.WECOM_USERID_LONGEST,
        )
        for locale in ("zh_CN", "en")
    )
    assert "人员表 第 3 行：企业微信账号重复：一个账号只能属于一个人（WANGWU）" in said
    assert "最长 64 个字符" in said and "WeCom account" in english


async def test_a_listed_member_is_welcomed_on_their_first_message_and_then_answered(
    runtime,
    fake,  # noqa: F811
):
    await imported(runtime)
    fake.members |= {"wangwu", "ZhaoLiu", "stranger"}
    wecom = await running(runtime, fake)
    pusher = Pusher(f"http://127.0.0.1:{wecom.port}/wecom/callback")
    try:
        await say(pusher, wecom, pusher.text("wangwu", "帮助"))
        await say(pusher, wecom, pusher.text("wangwu", "帮助"))
        await say(pusher, wecom, pusher.text("stranger", "你好"))
    finally:
        await pusher.close()
        await wecom.stop()
    welcome, help_first, help_again = texts(fake, "wangwu")
    assert welcome.startswith("王五同志，欢迎您！") and "/invites" in welcome
    assert help_first == help_again  # welcomed once, and their message answered each time
    assert (await wecom_accounts(runtime))["王五"] == ("wangwu", False, False)
    # Someone the roster does not list is told whom to ask.
    (answer,) = texts(fake, "stranger")
    assert answer == shown(runtime, "not_member") and "支部书记或组织管理员" in answer


async def test_opening_the_application_welcomes_once_and_marks_them_reachable(runtime, fake):  # noqa: F811
    await imported(runtime)
    fake.members |= {"wangwu"}
    wecom = await running(runtime, fake)
    pusher = Pusher(f"http://127.0.0.1:{wecom.port}/wecom/callback")
    try:
        await say(pusher, wecom, pusher.event("wangwu", "enter_agent", EventKey=""))
        assert len(texts(fake, "wangwu")) == 1  # the welcome
        await say(pusher, wecom, pusher.event("wangwu", "unsubscribe"))
        assert (await wecom_accounts(runtime))["王五"] == ("wangwu", False, True)
        await say(pusher, wecom, pusher.event("wangwu", "enter_agent", EventKey=""))
    finally:
        await pusher.close()
        await wecom.stop()
    assert (await wecom_accounts(runtime))["王五"] == ("wangwu", False, False)
    assert len(texts(fake, "wangwu")) == 1  # opening it again says nothing


# --- the directory's changes -----------------------------------------------------------------


async def test_a_member_who_left_the_organisation_is_no_longer_sent_to(runtime, fake):  # noqa: F811
    await imported(runtime)
    wecom = await running(runtime, fake)
    pusher = Pusher(f"http://127.0.0.1:{wecom.port}/wecom/callback")
    try:
        left = pusher.event("sys", "change_contact", ChangeType="delete_user", UserID="ZhaoLiu")
        # WeCom retries it, and another change in the same second is another event.
        await say(pusher, wecom, left, times=2)
        pusher.created -= 1
        moved = pusher.event(
            "sys", "change_contact", ChangeType="update_user", UserID="wangwu", NewUserID="ww"
        )
        await say(pusher, wecom, moved)
    finally:
        await pusher.close()
        await wecom.stop()
    assert await wecom_accounts(runtime) == {
        "王五": ("ww", True, False),  # not a message of theirs: still to be welcomed
        "赵六": ("ZhaoLiu", True, True),
    }
    assert fake.delivered == []  # the directory's events are answered by nobody


async def test_a_renamed_userid_keeps_its_binding_and_its_queued_messages(runtime, fake):  # noqa: F811
    await imported(runtime)
    await _announce_to_everyone(runtime)  # reaches them before they ever wrote
    fake.members |= {"ww", "ZhaoLiu"}
    wecom = await running(runtime, fake)
    pusher = Pusher(f"http://127.0.0.1:{wecom.port}/wecom/callback")
    try:
        moved = pusher.event(
            "sys", "change_contact", ChangeType="update_user", UserID="wangwu", NewUserID="ww"
        )
        await say(pusher, wecom, moved)
        async with runtime.db.session() as session:
            ids = (await session.exec(select(OutboxMessage.external_id))).all()
        assert sorted(ids) == ["ZhaoLiu", "ww", "ww"]  # the phase; the secretary's digest
        report = await delivery.send_now(wecom.channel.runtime)
        await say(pusher, wecom, pusher.text("ww", "帮助"))
    finally:
        await pusher.close()
        await wecom.stop()
    assert report.sent == 2  # the phase to both (the digest has nothing to say yet)
    announcement, welcome, *_phase, answer = texts(fake, "ww")
    assert texts(fake, "ZhaoLiu") == [announcement]
    assert welcome.startswith("王五同志，欢迎您！") and "/pledge" in answer


async def test_an_invite_used_first_on_a_listed_account_welcomes_once(runtime, fake):  # noqa: F811
    await imported(runtime)
    fake.members |= {"wangwu"}
    async with runtime.db.session() as session:
        member_id = (await session.exec(select(Member.id).where(Member.name == "王五"))).one()
        branch_id = (
            await session.exec(select(Member.branch_id).where(Member.id == member_id))
        ).one()
        (issued,) = await onboarding.issue_invites(
            session,
            now=runtime.clock.now(),
            valid_for=timedelta(days=1),
            branch_id=branch_id,
            member_name="王五",
        )
    wecom = await running(runtime, fake)
    pusher = Pusher(f"http://127.0.0.1:{wecom.port}/wecom/callback")
    try:
        await say(pusher, wecom, pusher.text("wangwu", f"/start {issued.token}"))
    finally:
        await pusher.close()
        await wecom.stop()
    (welcome,) = texts(fake, "wangwu")
    assert welcome.startswith("王五同志，欢迎您！")
    assert (await wecom_accounts(runtime))["王五"] == ("wangwu", False, False)
