"""Every table of the bot, in one place.

Enumerations are stored as their string values (not database enum types) so that adding a
value never needs a type migration.

Times are timezone-aware and stored in UTC (SQLModel's UTCDateTime); the templates show
them in the organisation's timezone.
"""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class Category(StrEnum):
    """The three kinds of member that seed 004's 分类指导 treats differently."""

    ORDINARY = "ordinary"  # 普通党员
    LEADING_CADRE = "leading_cadre"  # 党员领导干部
    ELDERLY = "elderly"  # 年老体弱党员


class Role(StrEnum):
    """What a member does in the organisation beyond being a member."""

    MEMBER = "member"  # 党员
    SECRETARY = "secretary"  # 支部书记 of their own branch
    LEADER = "leader"  # 班子成员, a member of the leadership team
    PARTY_SECRETARY = "party_secretary"  # 党组书记
    ORGANISER = "organiser"  # 创先争优活动领导小组办公室


class RaterGroup(StrEnum):
    """The groups of the masses who rate in 群众评议 (seed 004)."""

    STAFF = "staff"  # 局全体工作人员
    UNIT_STAFF = "unit_staff"  # 各基层单位工作人员
    VENDOR = "vendor"  # 市场经营户


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    created_at: datetime


class Branch(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    name: str = Field(max_length=200)
    # The organ branch (机关党支部) is reviewed by the party-group secretary, not a liaison.
    is_organ: bool = False


class Member(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("organisation_id", "roster_id"),
        # Names are unique among a branch's active members; a former member keeps theirs.
        Index(
            "uq_member_branch_active_name",
            "branch_id",
            "name",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    roster_id: str | None = Field(default=None, max_length=64)
    name: str = Field(max_length=100)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    category: Category = Field(default=Category.ORDINARY, sa_type=String(20))
    # Space-separated Role values; a handful per person, read far more often than written.
    roles: str = Field(default=Role.MEMBER.value, max_length=200)
    locale: str | None = Field(default=None, max_length=10)
    # A member dropped from the roster keeps their history but can no longer use the bot.
    active: bool = True
    # Only deadline reminders of their own, no announcements (/reminders).
    reminders_muted: bool = False
    created_at: datetime
    updated_at: datetime


class ChannelAccount(SQLModel, table=True):
    """Who a member is on one channel (Telegram, WeCom, the local chat): one account per
    channel, bound through an invite. Pushed messages go to one of them (storage.accounts)."""

    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        UniqueConstraint("member_id", "channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    channel: str = Field(max_length=16)
    # The channel's own id of the person (Telegram's user id as decimal text).
    external_id: str = Field(max_length=64)
    bound_at: datetime
    # Set when they block the bot there (403 or my_chat_member kicked), cleared when they return.
    unreachable_since: datetime | None = None
    # An account the roster gave (a WeCom userid from the organisation's directory) from which
    # its member has not written yet: they are welcomed on their first message.
    unseen: bool = False


class BranchLiaison(SQLModel, table=True):
    """The leadership member who liaises with a branch (联系班子成员)."""

    branch_id: int = Field(foreign_key="branch.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)


class Outsider(SQLModel, table=True):
    """One of the masses who rate members; many never have a Telegram account."""

    __table_args__ = (UniqueConstraint("organisation_id", "roster_id"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    roster_id: str | None = Field(default=None, max_length=64)
    name: str = Field(max_length=100)
    rater_group: RaterGroup = Field(sa_type=String(20))
    # The branch (or grassroots unit) whose members this person rates, if any.
    branch_id: int | None = Field(default=None, foreign_key="branch.id", index=True)
    active: bool = True
    created_at: datetime
    updated_at: datetime


class RosterVersion(SQLModel, table=True):
    """One row: a number that every write to a member or channel account row raises (database
    triggers, see migrations 0010 and 0011), whichever process made it; the identity cache
    compares it on each update."""

    id: int = Field(default=1, primary_key=True)
    version: int = 0


class Invite(SQLModel, table=True):
    """A personal, single-use deep-link token that binds a Telegram account to a member."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    # Only the token's SHA-256: whoever reads the database cannot bind an account with it.
    digest: str = Field(max_length=64, unique=True)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    # Set when a newer invite replaces this one, so a lost printout stops working.
    revoked_at: datetime | None = None


class Audience(StrEnum):
    """Who a campaign step asks something of."""

    EVERYONE = "everyone"
    SECRETARIES = "secretaries"
    LEADERS = "leaders"


class StepKind(StrEnum):
    """What a dated step of the campaign is, so the right feature can say when it is done."""

    SUMMARY = "summary"  # 自我小结: done when the member submits it
    EVALUATION = "evaluation"  # 点评 and 群众评议
    RECTIFICATION = "rectification"  # 整改落实
    TASK = "task"  # any other dated step; members report it done themselves


class Campaign(SQLModel, table=True):
    """The campaign's own settings, one per organisation, from the campaign file."""

    organisation_id: int = Field(foreign_key="organisation.id", primary_key=True)
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64)
    remind_days_before: int = 3
    reminder_time: str = Field(default="09:00", max_length=5)
    quiet_start: str = Field(default="21:00", max_length=5)
    quiet_end: str = Field(default="08:00", max_length=5)
    # The weekly digest to secretaries: on this weekday (Monday 0; None: never), at
    # reminder_time; skipped when there is nothing to say unless digest_when_quiet. The
    # campaign file sets it (Monday unless it says otherwise); no default here, because the
    # ORM would take None for "use the default".
    digest_weekday: int | None = None
    digest_when_quiet: bool = False
    loaded_at: datetime


class CampaignPhase(SQLModel, table=True):
    """A stage of the campaign (动员部署, 全面推进…), announced to everyone when it starts."""

    # Ids are never reused (reminders name them), not even on SQLite.
    __table_args__ = (UniqueConstraint("organisation_id", "name"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    name: str = Field(max_length=100)
    position: int
    starts_on: date
    ends_on: date
    announcement: str = Field(default="", max_length=2000)
    asks: str = Field(default="", max_length=2000)
    # Pledges are made, edited and withdrawn during the phases that say so (seed 001's
    # 动员部署 and the new round of 深化提升); afterwards only their progress is recorded.
    pledges: bool = False


class CampaignStep(SQLModel, table=True):
    """A dated step with a deadline: a quarter's summary, evaluation, rectification, or a task."""

    __table_args__ = (UniqueConstraint("organisation_id", "key"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    # Stable across reloads of the campaign file, so nothing is announced twice.
    key: str = Field(max_length=200)
    kind: StepKind = Field(sa_type=String(20))
    quarter: str | None = Field(default=None, max_length=100)
    name: str = Field(max_length=200)
    opens_on: date
    due_on: date
    audience: Audience = Field(default=Audience.EVERYONE, sa_type=String(20))
    text: str = Field(default="", max_length=2000)
    # A step dropped from a reloaded campaign file is kept (reminders refer to it) but inactive.
    active: bool = True
    # When this deadline became known: one that had passed by then is never chased.
    known_since: datetime


class StepDone(SQLModel, table=True):
    """A member has done what a step asked of them."""

    step_id: int = Field(foreign_key="campaignstep.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True, index=True)
    done_at: datetime


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its time (and for the morning, in quiet hours)
    CLAIMED = "claimed"  # taken by a sender, not yet handed to Telegram: safe to retake
    SENDING = "sending"  # its request was made: it may have arrived, so never handed again
    SENT = "sent"
    SKIPPED = "skipped"  # became pointless: done already, deadline passed, muted
    UNREACHABLE = "unreachable"  # the member blocked the bot
    FAILED = "failed"


class OutboxMessage(SQLModel, table=True):
    """One message to send: unique per (reminder, subject, recipient), so never twice."""

    __table_args__ = (UniqueConstraint("reminder", "subject", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    # The kind of message (phase_start, step_due_soon…) and what it is about (phase:3, step:12):
    # together the "period" of a reminder, so a new quarter's is a new message.
    reminder: str = Field(max_length=40)
    subject: str = Field(max_length=60)
    # Not indexed: a broadcast writes one row per member, and nothing looks rows up by member.
    member_id: int = Field(foreign_key="member.id")
    # The member's account it goes to, chosen when it was queued (storage.accounts); empty
    # for a row queued to a member with no account (skipped at once).
    channel: str | None = Field(default=None, max_length=16)
    external_id: str | None = Field(default=None, max_length=64)
    step_id: int | None = Field(default=None, foreign_key="campaignstep.id")
    # Lower goes first: 党员领导干部 get theirs before the others.
    priority: int = 1
    send_after: datetime
    expires_at: datetime
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=String(12), index=True)
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    attempts: int = 0
    error: str | None = Field(default=None, max_length=200)


class PlannedReminder(SQLModel, table=True):
    """A reminder whose recipients have been worked out: each is planned once, ever."""

    reminder: str = Field(max_length=40, primary_key=True)
    subject: str = Field(max_length=60, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    planned_at: datetime
    recipients: int  # rows written so far
    # A broadcast is written batch by batch as it is sent: while `expanding`, the next batch
    # starts after this recipient, in sending order (priority, then member id).
    expanding: bool = False
    written_priority: int = 0
    written_member_id: int = 0


class DigestReceipt(SQLModel, table=True):
    """What the last weekly digest told a reader, as a fingerprint of its figures: an
    unchanged week gets the short digest."""

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    fingerprint: str = Field(max_length=64)
    sent_at: datetime


class PledgeStatus(StrEnum):
    IN_PROGRESS = "in_progress"  # 进行中
    KEPT = "kept"  # 已兑现
    NOT_KEPT = "not_kept"  # 未兑现 (with the reason)
    WITHDRAWN = "withdrawn"  # taken back while the pledge window was open


class Pledge(SQLModel, table=True):
    """A public pledge (公开承诺): a member's, or the branch's own when member_id is empty."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    branch_id: int = Field(foreign_key="branch.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    goal: str = Field(max_length=500)
    measures: str = Field(max_length=1000)
    due_on: date | None = None
    status: PledgeStatus = Field(default=PledgeStatus.IN_PROGRESS, sa_type=String(12))
    status_note: str | None = Field(default=None, max_length=500)
    created_by: int = Field(foreign_key="member.id")
    created_at: datetime
    updated_at: datetime


class PledgeProgress(SQLModel, table=True):
    """A note on how a pledge is going, optionally with a photo or document as evidence."""

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    author_id: int = Field(foreign_key="member.id")
    note: str = Field(default="", max_length=1000)
    evidence_file_id: str | None = Field(default=None, max_length=200)
    evidence_kind: str | None = Field(default=None, max_length=10)  # photo or document
    created_at: datetime


class SummaryStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class Summary(SQLModel, table=True):
    """A quarter's self-summary (自我小结), a member's or (member_id empty) the branch's."""

    __table_args__ = (UniqueConstraint("step_id", "owner"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    step_id: int = Field(foreign_key="campaignstep.id")
    # "member:<id>" or "branch:<id>": one summary per owner and quarter.
    owner: str = Field(max_length=40)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    status: SummaryStatus = Field(default=SummaryStatus.DRAFT, sa_type=String(10))
    # The question the member is on, so a resumed draft continues where it stopped.
    stage: str = Field(default="", max_length=40)
    # 分类指导: a 年老体弱 member's summary asks fewer questions (decided when it starts).
    short_form: bool = False
    achievements: str = Field(default="", max_length=2000)  # 总结成绩
    problems: str = Field(default="", max_length=2000)  # 查找问题
    causes: str = Field(default="", max_length=2000)  # 分析原因
    next_steps: str = Field(default="", max_length=2000)  # 下一步
    # A text refused as too long, kept so it can be shortened rather than typed again.
    refused_text: str | None = Field(default=None, max_length=8000)
    late: bool = False
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None


class SummaryPledge(SQLModel, table=True):
    """One pledge looked back at (回头看) in a summary."""

    summary_id: int = Field(foreign_key="summary.id", primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", primary_key=True)
    status: PledgeStatus = Field(sa_type=String(12))
    note: str = Field(default="", max_length=500)


class ChatState(SQLModel, table=True):
    """The conversation a member is in, kept in the database so a restart loses nothing."""

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    flow: str = Field(max_length=20)  # pledge, progress, summary…
    subject_id: int | None = None  # the pledge or summary it is about
    stage: str = Field(default="", max_length=40)
    # What has been typed so far in a flow that has no row of its own yet (JSON).
    data: str = Field(default="{}", max_length=8000)
    updated_at: datetime


class ReviewerOverride(SQLModel, table=True):
    """The organiser's exception to the roster's reviewer mapping, for one reviewee."""

    __table_args__ = (UniqueConstraint("organisation_id", "reviewee"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    # "member:<id>" or "branch:<id>", as a summary's owner.
    reviewee: str = Field(max_length=40)
    reviewer_id: int = Field(foreign_key="member.id")
    created_at: datetime


class ReviewStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"  # handed to the outbox for the reviewee
    ACKNOWLEDGED = "acknowledged"  # the reviewee pressed "已阅"


class Review(SQLModel, table=True):
    """A leader's review (领导点评) of a member or a branch for one quarter (seed 004)."""

    __table_args__ = (UniqueConstraint("step_id", "reviewee"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    # The quarter's summary step: a review belongs to the quarter it looks back on.
    step_id: int = Field(foreign_key="campaignstep.id")
    reviewee: str = Field(max_length=40)  # "member:<id>" or "branch:<id>"
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    reviewer_id: int = Field(foreign_key="member.id", index=True)
    status: ReviewStatus = Field(default=ReviewStatus.DRAFT, sa_type=String(12))
    stage: str = Field(default="", max_length=40)
    achievements: str = Field(default="", max_length=2000)  # 肯定成绩
    problems: str = Field(default="", max_length=2000)  # 指出问题
    direction: str = Field(default="", max_length=2000)  # 明确方向
    requirements: str = Field(default="", max_length=2000)  # 整改要求
    # The reviewer chose to track the problems pointed out as rectification items too.
    track_problems: bool = False
    refused_text: str | None = Field(default=None, max_length=8000)
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    acknowledged_at: datetime | None = None


class RectificationStatus(StrEnum):
    OPEN = "open"
    DONE = "done"  # reported done by the reviewee, waiting for the reviewer
    CONFIRMED = "confirmed"  # the reviewer confirmed it: closed


class Rectification(SQLModel, table=True):
    """One item to rectify (整改落实), raised by a review."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    review_id: int = Field(foreign_key="review.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    text: str = Field(max_length=1000)
    # Which part of the review it came from: requirements (整改要求) or problems (指出问题).
    source: str = Field(max_length=20)
    due_on: date
    status: RectificationStatus = Field(
        default=RectificationStatus.OPEN, sa_type=String(12), index=True
    )
    done_note: str = Field(default="", max_length=1000)
    # Counts the times it was reported done, so each report (after a reopening) is news.
    reports: int = 0
    created_at: datetime
    updated_at: datetime
    done_at: datetime | None = None
    confirmed_at: datetime | None = None


class RectificationProgress(SQLModel, table=True):
    """A note on how a rectification item is going, by the reviewee or (reopening) the reviewer."""

    id: int | None = Field(default=None, primary_key=True)
    rectification_id: int = Field(foreign_key="rectification.id", index=True)
    author_id: int = Field(foreign_key="member.id")
    kind: str = Field(default="progress", max_length=12)  # progress, done, confirmed, reopened
    note: str = Field(default="", max_length=1000)
    created_at: datetime


class SummaryRectification(SQLModel, table=True):
    """An open rectification item looked back at in the next quarter's summary."""

    summary_id: int = Field(foreign_key="summary.id", primary_key=True)
    rectification_id: int = Field(foreign_key="rectification.id", primary_key=True)
    note: str = Field(default="", max_length=500)


# --- 群众评议: anonymous mass evaluation ---------------------------------------------------
#
# Who has rated which target is kept apart from what was chosen. A confirmed ballot is held in
# memory until its target has a batch of at least k of them (the round's threshold), or until
# the round closes; a batch then writes its raters' participation and the sum of its choices
# in one transaction, rows in shuffled order. Choices live only as counts per (round, target,
# item, level), every count of a target rewritten by each batch, and comments as rows under
# random keys: no row, key, order, transaction or time belongs to a single ballot. The rating
# tables are WITHOUT ROWID on SQLite, so no hidden rowid records the order of anything either.


class EvaluationRound(SQLModel, table=True):
    """A round of 群众评议 for one quarter; its settings cannot change once it has opened."""

    __table_args__ = (
        UniqueConstraint("organisation_id", "quarter"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    quarter: str = Field(max_length=100)
    opens_at: datetime
    closes_at: datetime
    closed_at: datetime | None = None
    # When the ballots still held in memory at the close were counted: results wait for it.
    counted_at: datetime | None = None
    # Scale, items, who rates whom and the anonymity thresholds (JSON; see RoundSettings).
    settings: str = Field(max_length=8000)
    created_at: datetime


class TargetKind(StrEnum):
    """Which of seed 004's item lists a target is rated on."""

    BRANCH = "branch"  # 党支部
    LEADING_CADRE = "leading_cadre"  # 党员领导干部
    ORDINARY = "ordinary"  # 普通党员


class EvaluationTarget(SQLModel, table=True):
    """A member or branch rated in a round, fixed when the round is set up."""

    round_id: int = Field(foreign_key="evaluationround.id", primary_key=True)
    target: str = Field(max_length=40, primary_key=True)  # "member:<id>" or "branch:<id>"
    kind: TargetKind = Field(sa_type=String(20))
    branch_id: int = Field(foreign_key="branch.id")
    # A member of the leadership team (班子成员), rated by all staff (seed 004).
    leadership: bool = False


class EvaluationCode(SQLModel, table=True):
    """A one-time evaluation code (测评码) for one of the masses; it names nobody.

    Only the code's digest is kept, so nobody reading the database can use a code."""

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="evaluationround.id", index=True)
    digest: str = Field(max_length=64, unique=True)
    rater_group: RaterGroup = Field(sa_type=String(20))
    # The branch (or grassroots unit) whose members the holder rates, if any.
    branch_id: int | None = Field(default=None, foreign_key="branch.id")


class EvaluationParticipation(SQLModel, table=True):
    """That a rater has rated a target in a round: never what they chose, never when."""

    __table_args__ = ({"sqlite_with_rowid": False},)

    round_id: int = Field(foreign_key="evaluationround.id", primary_key=True)
    rater: str = Field(max_length=40, primary_key=True)  # "member:<id>" or "code:<id>"
    target: str = Field(max_length=40, primary_key=True)


class EvaluationTally(SQLModel, table=True):
    """How many ballots gave a target this level on this item: the only record of choices."""

    __table_args__ = ({"sqlite_with_rowid": False},)

    round_id: int = Field(foreign_key="evaluationround.id", primary_key=True)
    target: str = Field(max_length=40, primary_key=True)
    item: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    count: int = 0


class EvaluationComment(SQLModel, table=True):
    """One comment on a target, with no author or time, under a random key: the rows of a
    target sit in an order that says nothing of when, or by whom, each was written."""

    __table_args__ = ({"sqlite_with_rowid": False},)

    round_id: int = Field(foreign_key="evaluationround.id", primary_key=True)
    target: str = Field(max_length=40, primary_key=True)
    slot: str = Field(max_length=32, primary_key=True)  # random
    text: str = Field(sa_type=Text)


class EvaluationCodeUse(SQLModel, table=True):
    """Keyed hashes that say an account has used an evaluation code in a round (and, apart,
    which code it may come back to): one code per account, across restarts. The key is in
    the bot's configuration, not here, so these rows name no account and no code."""

    __table_args__ = ({"sqlite_with_rowid": False},)

    digest: str = Field(max_length=64, primary_key=True)


# --- 评选表彰 (selection and commendation) ----------------------------------------------------


class SelectionStage(StrEnum):
    NOMINATING = "nominating"  # branches nominate, within the window
    GRADING = "grading"  # the leading group grades (from the window's end)
    CONFIRMED = "confirmed"  # the organiser confirmed the final list
    PUBLISHED = "published"  # announced and compiled


class Selection(SQLModel, table=True):
    """A selection of advanced branches and excellent members (seeds 001, 002)."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    name: str = Field(max_length=200)
    # JSON: [{"key": "member", "name": "优秀共产党员", "of": "member"}, …]; "of" member or branch
    categories: str = Field(max_length=4000)
    opens_at: datetime
    closes_at: datetime  # nominations close; grading starts
    per_branch: int  # nominees a branch may put forward in each category
    # JSON: {"first": 1, "second": 2, "third": 3}: prizes in each category
    prizes: str = Field(max_length=200)
    graders: str = Field(max_length=2000)  # JSON list of member ids: the leading group
    stage: SelectionStage = Field(default=SelectionStage.NOMINATING, sa_type=String(12))
    created_at: datetime
    confirmed_at: datetime | None = None
    published_at: datetime | None = None


class Nomination(SQLModel, table=True):
    """A branch's nominee in one category, with the deed material (先进事迹材料)."""

    __table_args__ = (UniqueConstraint("selection_id", "category", "nominee"),)

    id: int | None = Field(default=None, primary_key=True)
    selection_id: int = Field(foreign_key="selection.id", index=True)
    category: str = Field(max_length=40)
    nominee: str = Field(max_length=40)  # "member:<id>" or "branch:<id>"
    member_id: int | None = Field(default=None, foreign_key="member.id")
    branch_id: int = Field(foreign_key="branch.id", index=True)
    material: str = Field(default="", sa_type=Text)
    nominated_by: int = Field(foreign_key="member.id")
    prize: str | None = Field(default=None, max_length=10)  # first/second/third once confirmed
    created_at: datetime
    updated_at: datetime


class GradeProposal(SQLModel, table=True):
    """One grader's proposed prize for one nominee: private until they submit all of theirs."""

    nomination_id: int = Field(foreign_key="nomination.id", primary_key=True)
    grader_id: int = Field(foreign_key="member.id", primary_key=True)
    prize: str = Field(max_length=10)  # first, second, third or none


class GraderSubmission(SQLModel, table=True):
    """That a grader has submitted their proposals (they may then see everyone's)."""

    selection_id: int = Field(foreign_key="selection.id", primary_key=True)
    grader_id: int = Field(foreign_key="member.id", primary_key=True)
    submitted_at: datetime


class BoundChat(SQLModel, table=True):
    """A group chat an organiser bound with /bind, to which announcements also go."""

    chat_id: int = Field(primary_key=True, sa_type=BigInteger)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    # The channel the group chat is on (where /bind was sent): announcements go through it.
    channel: str = Field(default="telegram", max_length=16)
    title: str = Field(default="", max_length=200)
    bound_by: int = Field(foreign_key="member.id")
    bound_at: datetime


class GroupMessage(SQLModel, table=True):
    """An announcement to a group chat of a channel (WeCom: a group robot's webhook, named as
    in WECOM_ROBOTS), sent once: unique per channel, chat and subject, claimed and marked as
    being sent like an outbox row."""

    __table_args__ = (UniqueConstraint("channel", "chat", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    channel: str = Field(max_length=16)
    chat: str = Field(max_length=200)
    subject: str = Field(max_length=60)  # what it announces: commendation:3
    text: str = Field(sa_type=Text)  # rendered when it was queued, in the default language
    send_after: datetime
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=String(12), index=True)
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    attempts: int = 0
    error: str | None = Field(default=None, max_length=200)


class SentCount(SQLModel, table=True):
    """How many messages a channel sent one recipient (a member, a group robot) in one minute,
    written before each request and kept for an hour: per-recipient limits (WeCom: 30 a minute
    and 1,000 an hour per member, 20 a minute per robot) hold across a restart."""

    channel: str = Field(max_length=16, primary_key=True)
    recipient: str = Field(max_length=200, primary_key=True)
    minute: datetime = Field(primary_key=True)
    count: int = 0


class IntakeUpdate(SQLModel, table=True):
    """An update from a channel, stored before the channel is told it arrived, so that it is
    processed once even if the process dies: unique per channel and the channel's update id."""

    __table_args__ = (UniqueConstraint("channel", "update_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    update_id: str = Field(max_length=64)
    # The update as the channel sent it, until it is processed. Never stored for a 群众评议
    # ballot (a tap or a comment): that one is processed from memory only.
    payload: str | None = Field(default=None, sa_type=Text)
    done: bool = False
    # The replies of a processed update, written with its work and kept until they have all
    # been handed to the channel, so that a restart sends what never left; and how many
    # have been handed over (those may have arrived: never sent again).
    replies: str | None = Field(default=None, sa_type=Text)
    replies_handed: int = 0
