"""Every table of the bot, in one place.

Enumerations are stored as their string values (not database enum types) so that adding a
value never needs a type migration.

Times are timezone-aware and stored in UTC (SQLModel's UTCDateTime); the templates show
them in the organisation's timezone.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, String, UniqueConstraint
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
        UniqueConstraint("branch_id", "name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    roster_id: str | None = Field(default=None, max_length=64)
    name: str = Field(max_length=100)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    category: Category = Field(default=Category.ORDINARY, sa_type=String(20))
    # Space-separated Role values; a handful per person, read far more often than written.
    roles: str = Field(default=Role.MEMBER.value, max_length=200)
    telegram_user_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, unique=True, nullable=True)
    )
    locale: str | None = Field(default=None, max_length=10)
    # A member dropped from the roster keeps their history but can no longer use the bot.
    active: bool = True
    bound_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


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


class Invite(SQLModel, table=True):
    """A personal, single-use deep-link token that binds a Telegram account to a member."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    token: str = Field(max_length=64, unique=True)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    # Set when a newer invite replaces this one, so a lost printout stops working.
    revoked_at: datetime | None = None
