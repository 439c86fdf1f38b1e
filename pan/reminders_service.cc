#include "pan/reminders_service.h"

#include "common/rpc/service_call.h"

// Who may call what is documented per RPC in pan.proto: portals and admins write accounts
// and read; only admins change settings and list planned reminders.
namespace mailroom::pan {

MAILROOM_FORWARD_UNARY_RPC(RemindersService, v1, UpsertGuestAccount, kPortalOrAdmin, reminders_)
MAILROOM_FORWARD_UNARY_RPC(RemindersService, v1, DeleteGuestAccount, kPortalOrAdmin, reminders_)
MAILROOM_FORWARD_UNARY_RPC(RemindersService, v1, UpsertUserAccount, kPortalOrAdmin, reminders_)
MAILROOM_FORWARD_UNARY_RPC(RemindersService, v1, DeleteUserAccount, kPortalOrAdmin, reminders_)
MAILROOM_FORWARD_UNARY_RPC(RemindersService, v1, ListAccounts, kPortalOrAdmin, reminders_)
MAILROOM_FORWARD_UNARY_RPC(RemindersService, v1, GetReminderSettings, kPortalOrAdmin, reminders_)
MAILROOM_FORWARD_UNARY_RPC(RemindersService, v1, SetReminderSettings, kAdminOnly, reminders_)
MAILROOM_FORWARD_UNARY_RPC(RemindersService, v1, ListPlannedReminders, kAdminOnly, reminders_)
MAILROOM_FORWARD_UNARY_RPC(RemindersService, v1, GetNotificationStatus, kPortalOrAdmin, reminders_)

}  // namespace mailroom::pan
