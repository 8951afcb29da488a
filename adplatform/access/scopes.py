"""The scopes a platform key can carry (SPEC §4)."""

EVENTS_WRITE = "events:write"
ADS_RANK = "ads:rank"
PROFILES_READ = "profiles:read"
USERS_ERASE = "users:erase"
ADVERTISERS_WRITE = "advertisers:write"
PLACEMENTS_WRITE = "placements:write"
CREATIVES_REVIEW = "creatives:review"
# Carried by advertiser tokens only (issued by POST /advertisers).
ADVERTISER = "advertiser"

ALL_PLATFORM_SCOPES = (
    EVENTS_WRITE,
    ADS_RANK,
    PROFILES_READ,
    USERS_ERASE,
    ADVERTISERS_WRITE,
    PLACEMENTS_WRITE,
    CREATIVES_REVIEW,
)
