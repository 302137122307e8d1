/*
 * dcb_callout.h — the Microsoft DHCP Server callout API, on both platforms.
 *
 * On Windows this is <dhcpssdk.h> itself. On Linux (the development rig) it
 * declares the same types with the same sizes as Windows x64 (LLP64: DWORD and
 * ULONG are 32 bits, WCHAR is 16 bits), so callout code, dcb-sim, the shim and
 * the host compile unchanged on both.
 */
#ifndef DCB_CALLOUT_H
#define DCB_CALLOUT_H

#ifdef _WIN32
#include <windows.h>
#include <dhcpssdk.h>
#define DCB_CALLOUT_EXPORT __declspec(dllexport)
#else
#include <stdint.h>

typedef uint32_t DWORD;
typedef uint32_t ULONG;
typedef int32_t BOOL;
typedef uint8_t BOOLEAN;
typedef uint8_t BYTE;
typedef char CHAR;
typedef uint16_t WCHAR;
typedef void *LPVOID;
typedef BYTE *LPBYTE;
typedef BOOL *LPBOOL;
typedef WCHAR *LPWSTR;
typedef const WCHAR *LPCWSTR;

#define WINAPI
#define CALLBACK
#define UNALIGNED
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#define ERROR_SUCCESS 0u
#define ERROR_INVALID_PARAMETER 87u
#define ERROR_NOT_SUPPORTED 50u
#define ERROR_NOT_ENOUGH_MEMORY 8u
#define ERROR_FILE_NOT_FOUND 2u

typedef DWORD DHCP_IP_ADDRESS;

typedef struct _DHCP_SERVER_OPTIONS {
    BYTE *MessageType;
    DHCP_IP_ADDRESS UNALIGNED *SubnetMask;
    DHCP_IP_ADDRESS UNALIGNED *RequestedAddress;
    DWORD UNALIGNED *RequestLeaseTime;
    BYTE *OverlayFields;
    DHCP_IP_ADDRESS UNALIGNED *RouterAddress;
    DHCP_IP_ADDRESS UNALIGNED *Server;
    BYTE *ParameterRequestList;
    DWORD ParameterRequestListLength;
    CHAR *MachineName;
    DWORD MachineNameLength;
    BYTE ClientHardwareAddressType;
    BYTE ClientHardwareAddressLength;
    BYTE *ClientHardwareAddress;
    CHAR *ClassIdentifier;
    DWORD ClassIdentifierLength;
    BYTE *VendorClass;
    DWORD VendorClassLength;
    DWORD DNSFlags;
    DWORD DNSNameLength;
    LPBYTE DNSName;
    BOOLEAN DSDomainNameRequested;
    CHAR *DSDomainName;
    DWORD DSDomainNameLen;
    DWORD UNALIGNED *ScopeId;
} DHCP_SERVER_OPTIONS, *LPDHCP_SERVER_OPTIONS;

#define DHCP_CALLOUT_ENTRY_POINT "DhcpServerCalloutEntry"

#define DHCP_CONTROL_START 0x00000001
#define DHCP_CONTROL_STOP 0x00000002
#define DHCP_CONTROL_PAUSE 0x00000003
#define DHCP_CONTROL_CONTINUE 0x00000004

#define DHCP_DROP_DUPLICATE 0x00000001
#define DHCP_DROP_NOMEM 0x00000002
#define DHCP_DROP_INTERNAL_ERROR 0x00000003
#define DHCP_DROP_TIMEOUT 0x00000004
#define DHCP_DROP_UNAUTH 0x00000005
#define DHCP_DROP_PAUSED 0x00000006
#define DHCP_DROP_NO_SUBNETS 0x00000007
#define DHCP_DROP_INVALID 0x00000008
#define DHCP_DROP_WRONG_SERVER 0x00000009
#define DHCP_DROP_NOADDRESS 0x0000000A
#define DHCP_DROP_PROCESSED 0x0000000B
#define DHCP_DROP_GEN_FAILURE 0x00000100
#define DHCP_SEND_PACKET 0x10000000
#define DHCP_PROB_CONFLICT 0x20000001
#define DHCP_PROB_DECLINE 0x20000002
#define DHCP_PROB_RELEASE 0x20000003
#define DHCP_PROB_NACKED 0x20000004
#define DHCP_GIVE_ADDRESS_NEW 0x30000001
#define DHCP_GIVE_ADDRESS_OLD 0x30000002
#define DHCP_CLIENT_BOOTP 0x30000003
#define DHCP_CLIENT_DHCP 0x30000004

typedef DWORD(WINAPI *LPDHCP_CONTROL)(DWORD dwControlCode, LPVOID lpReserved);
typedef DWORD(WINAPI *LPDHCP_NEWPKT)(LPBYTE *Packet, DWORD *PacketSize, DWORD IpAddress,
                                     LPVOID Reserved, LPVOID *PktContext, LPBOOL ProcessIt);
typedef DWORD(WINAPI *LPDHCP_DROP_SEND)(LPBYTE *Packet, DWORD *PacketSize, DWORD ControlCode,
                                        DWORD IpAddress, LPVOID Reserved, LPVOID PktContext);
typedef DWORD(WINAPI *LPDHCP_PROB)(LPBYTE Packet, DWORD PacketSize, DWORD ControlCode,
                                   DWORD IpAddress, DWORD AltAddress, LPVOID Reserved,
                                   LPVOID PktContext);
typedef DWORD(WINAPI *LPDHCP_GIVE_ADDRESS)(LPBYTE Packet, DWORD PacketSize, DWORD ControlCode,
                                           DWORD IpAddress, DWORD AltAddress, DWORD AddrType,
                                           DWORD LeaseTime, LPVOID Reserved, LPVOID PktContext);
typedef DWORD(WINAPI *LPDHCP_HANDLE_OPTIONS)(LPBYTE Packet, DWORD PacketSize, LPVOID Reserved,
                                             LPVOID PktContext,
                                             LPDHCP_SERVER_OPTIONS ServerOptions);
typedef DWORD(WINAPI *LPDHCP_DELETE_CLIENT)(DWORD IpAddress, LPBYTE HwAddress,
                                            ULONG HwAddressLength, DWORD Reserved,
                                            DWORD ClientType);

typedef struct _DHCP_CALLOUT_TABLE {
    LPDHCP_CONTROL DhcpControlHook;
    LPDHCP_NEWPKT DhcpNewPktHook;
    LPDHCP_DROP_SEND DhcpPktDropHook;
    LPDHCP_DROP_SEND DhcpPktSendHook;
    LPDHCP_PROB DhcpAddressDelHook;
    LPDHCP_GIVE_ADDRESS DhcpAddressOfferHook;
    LPDHCP_HANDLE_OPTIONS DhcpHandleOptionsHook;
    LPDHCP_DELETE_CLIENT DhcpDeleteClientHook;
    LPVOID DhcpExtensionHook;
    LPVOID DhcpReservedHook;
} DHCP_CALLOUT_TABLE, *LPDHCP_CALLOUT_TABLE;

typedef DWORD(WINAPI *LPDHCP_ENTRY_POINT_FUNC)(LPWSTR ChainDlls, DWORD CalloutVersion,
                                               LPDHCP_CALLOUT_TABLE CalloutTbl);

#define DCB_CALLOUT_EXPORT __attribute__((visibility("default")))
#endif /* _WIN32 */

/* Hook indices shared by the shim, the broker, the host and dcb-sim. */
typedef enum dcb_hook {
    DCB_HOOK_CONTROL = 0,
    DCB_HOOK_NEWPKT = 1,
    DCB_HOOK_PKTDROP = 2,
    DCB_HOOK_PKTSEND = 3,
    DCB_HOOK_ADDRESSDEL = 4,
    DCB_HOOK_ADDRESSOFFER = 5,
    DCB_HOOK_HANDLEOPTIONS = 6,
    DCB_HOOK_DELETECLIENT = 7,
    DCB_HOOK_COUNT = 8
} dcb_hook_t;

#define DCB_HOOK_BIT(h) (1u << (h))

#endif /* DCB_CALLOUT_H */
