package event

import "fmt"

// Message templates. Each is rendered by renderMessage from the event's draw stream; a direct switch rather
// than a table of funcs keeps the writer on the stack (an indirect call would make it escape).
const (
	tLogon = iota
	tServiceState
	tHTTP
	tBackupDone
	tSSHAccepted
	tTaskDone
	tQuery
	tDiskSpace
	tSlowRequest
	tRetry
	tCertExpiry
	tAppCrash
	tException
	tLogonFailed
	tConstraint
	tCache
	tGCPause
	tUncleanReboot
	tBadBlock
	tOOMKill
	templateCount
)

// levelTemplates lists the templates used at each level.
var levelTemplates = [levelCount][]int{
	levelInfo:     {tLogon, tServiceState, tHTTP, tHTTP, tBackupDone, tSSHAccepted, tTaskDone, tQuery},
	levelWarning:  {tDiskSpace, tSlowRequest, tRetry, tCertExpiry},
	levelError:    {tAppCrash, tException, tLogonFailed, tConstraint},
	levelDebug:    {tCache, tGCPause},
	levelCritical: {tUncleanReboot, tBadBlock, tOOMKill},
}

var templateSources = [templateCount][]string{
	tLogon:         {"Microsoft-Windows-Security-Auditing"},
	tServiceState:  {"Service Control Manager"},
	tHTTP:          {"nginx", "IIS-W3SVC", "envoy"},
	tBackupDone:    {"Backup Exec", "VSS"},
	tSSHAccepted:   {"sshd"},
	tTaskDone:      {"Microsoft-Windows-TaskScheduler"},
	tQuery:         {"MSSQLSERVER", "PostgreSQL"},
	tDiskSpace:     {"srv", "Microsoft-Windows-Ntfs"},
	tSlowRequest:   {"nginx", "IIS-W3SVC", "envoy"},
	tRetry:         {"Tcpip", "kafka-client", "Microsoft-Windows-DNS-Client"},
	tCertExpiry:    {"Schannel", "CertificateServicesClient"},
	tAppCrash:      {"Application Error"},
	tException:     {"ASP.NET 4.0.30319.0", ".NET Runtime"},
	tLogonFailed:   {"Microsoft-Windows-Security-Auditing"},
	tConstraint:    {"PostgreSQL"},
	tCache:         {"redis-cache", "app-cache"},
	tGCPause:       {"runtime", ".NET Runtime"},
	tUncleanReboot: {"Microsoft-Windows-Kernel-Power"},
	tBadBlock:      {"disk"},
	tOOMKill:       {"kernel"},
}

var (
	services    = []string{"Windows Update", "Print Spooler", "Background Intelligent Transfer Service", "SQL Server Agent (MSSQLSERVER)", "World Wide Web Publishing Service", "Windows Defender Antivirus Service", "Remote Registry", "DHCP Client"}
	processes   = []string{"svchost.exe", "lsass.exe", "winlogon.exe", "services.exe", "explorer.exe"}
	methods     = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	resources   = []string{"orders", "users", "invoices", "sessions", "products", "payments"}
	agents      = []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", "curl/8.5.0", "okhttp/4.12.0", "python-requests/2.32"}
	jobs        = []string{"Nightly SQL full", "File server incremental", "Exchange mailbox", "VM snapshot"}
	tasks       = []string{`Windows\Defrag\ScheduledDefrag`, `Windows\UpdateOrchestrator\Schedule Scan`, `Corp\Rotate logs`, `Windows\WindowsUpdate\Scheduled Start`}
	tables      = []string{"orders", "customers", "invoices", "audit_log", "sessions"}
	volumes     = []string{"C:", "D:", "E:"}
	hosts       = []string{"kafka-1.corp.example.com", "db-primary.corp.example.com", "auth.corp.example.com", "smtp.corp.example.com"}
	apps        = []string{"OUTLOOK", "w3wp", "sqlservr", "Teams", "java", "chrome"}
	modules     = []string{"ntdll", "KERNELBASE", "ucrtbase", "clr", "mso20win32client"}
	vendors     = []string{"Microsoft Office", "Common Files", "Java", "Corp Tools"}
	namespaces  = []string{"Corp.Billing", "Corp.Orders", "Corp.Identity", "Corp.Reports"}
	classes     = []string{"InvoiceService", "OrderController", "TokenValidator", "ReportBuilder"}
	killed      = []string{"java", "postgres", "node", "chrome", "python3"}
	cacheVerbs  = []string{"hit", "hit", "hit", "miss"}
	sshKeyChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// computers and users are the host and account pools events draw from.
var (
	computers = func() []string {
		var out []string
		for _, role := range []string{"web", "app", "db", "dc", "fs", "backup"} {
			for n := 1; n <= 6; n++ {
				out = append(out, fmt.Sprintf("%s-%02d.corp.example.com", role, n))
			}
		}
		for n := 100; n < 180; n += 3 {
			out = append(out, fmt.Sprintf("WS-%04d", n))
		}
		return out
	}()
	users = []string{
		"SYSTEM", "SYSTEM", "NETWORK SERVICE", "LOCAL SERVICE", "Administrator",
		`CORP\jsmith`, `CORP\mgarcia`, `CORP\a.kowalski`, `CORP\li.wei`, `CORP\o'brien`, `CORP\zoë.müller`,
		`CORP\svc_backup`, `CORP\svc_sql`, "root", "www-data", "postgres", "nginx", "-",
	}
)

func renderMessage(w *msgWriter, d *draw, t int) {
	switch t {
	case tLogon:
		w.s("An account was successfully logged on. Account Name: ")
		w.pick(d, users)
		w.s(" Logon Type: ")
		w.u(uint64([]int{2, 3, 3, 5, 10}[d.n(5)]))
		w.s(" Source Network Address: ")
		w.ip(d)
		w.s(` Process Name: C:\Windows\System32\`)
		w.pick(d, processes)
	case tServiceState:
		k := d.n(3)
		w.s("The ")
		w.pick(d, services)
		w.s(" service entered the ")
		w.s([]string{"running", "stopped", "running"}[k])
		w.s(" state")
		w.s([]string{" after a start request from the service control manager during boot.",
			" after a stop request from an administrator session.",
			" again after an unexpected termination; recovery action 1 of 3 (restart the service) was taken."}[k])
	case tHTTP, tSlowRequest:
		if t == tSlowRequest {
			w.s("Slow request (threshold 500 ms): ")
		}
		w.pick(d, methods)
		w.s(" /api/v")
		w.u(d.between(1, 2))
		w.s("/")
		w.pick(d, resources)
		w.s("/")
		w.u(d.between(1000, 999999))
		w.s(" ")
		w.u(uint64([]int{200, 200, 200, 201, 204, 304, 404}[d.n(7)]))
		w.s(" ")
		w.u(d.between(120, 48000))
		w.s(" bytes in ")
		if t == tSlowRequest {
			w.ms(d, 501, 9000)
		} else {
			w.ms(d, 1, 480)
		}
		w.s(` ms client=`)
		w.ip(d)
		w.s(` agent="`)
		w.pick(d, agents)
		w.s(`" request_id=`)
		w.hex(d.u64(), 16)
	case tBackupDone:
		w.s(`Backup job "`)
		w.pick(d, jobs)
		w.s(`" completed: `)
		w.u(d.between(10, 250000))
		w.s(" files, ")
		w.u(d.between(1, 90000))
		w.s(` MB copied to \\backup-0`)
		w.u(d.between(1, 3))
		w.s(`\vault\`)
		w.u(d.between(2024, 2026))
		w.s("-0")
		w.u(d.between(1, 9))
	case tSSHAccepted:
		w.s("Accepted publickey for ")
		w.pick(d, []string{"root", "deploy", "ansible", "git"})
		w.s(" from ")
		w.ip(d)
		w.s(" port ")
		w.u(d.between(32768, 60999))
		w.s(" ssh2: ED25519 SHA256:")
		for range 43 {
			w.b = append(w.b, sshKeyChars[d.n(len(sshKeyChars))])
		}
	case tTaskDone:
		w.s(`Task Scheduler successfully finished "\`)
		w.pick(d, tasks)
		w.s(`" in `)
		w.ms(d, 40, 120000)
		w.s(" ms, result code 0x0.")
	case tQuery:
		w.s("duration: ")
		w.u(d.between(0, 900))
		w.s(".")
		w.u(d.between(100, 999))
		w.s(" ms statement: SELECT id, status, total FROM ")
		w.pick(d, tables)
		w.s(" WHERE customer_id = ")
		w.u(d.between(1, 500000))
		w.s(" ORDER BY created_at DESC LIMIT 50; rows=")
		w.u(d.between(0, 50))
		w.s(" session=")
		w.u(d.between(50, 900))
	case tDiskSpace:
		w.s("The disk ")
		w.pick(d, volumes)
		w.s(` (\Device\HarddiskVolume`)
		w.u(d.between(1, 6))
		w.s(") is at ")
		w.u(d.between(85, 99))
		w.s("% of its capacity; ")
		w.u(d.between(200, 20000))
		w.s(" MB free.")
	case tRetry:
		w.s("Connection to ")
		w.pick(d, hosts)
		w.s(":")
		w.u(uint64([]int{443, 5432, 9093, 25, 53}[d.n(5)]))
		w.s(" timed out after ")
		w.ms(d, 1000, 30000)
		w.s(" ms; retry ")
		w.u(d.between(1, 5))
		w.s(" of 5 in ")
		w.u(d.between(1, 30))
		w.s(" s.")
	case tCertExpiry:
		w.s(`The certificate for "CN=`)
		w.pick(d, hosts)
		w.s(`" expires in `)
		w.u(d.between(1, 29))
		w.s(" days (thumbprint ")
		w.hex(d.u64(), 16)
		w.hex(d.u64(), 16)
		w.hex(d.u64(), 8)
		w.s(").")
	case tAppCrash:
		app := apps[d.n(len(apps))]
		w.s("Faulting application name: ")
		w.s(app)
		w.s(".exe, version: 16.0.")
		w.u(d.between(10000, 18000))
		w.s(".20000, faulting module: ")
		w.pick(d, modules)
		w.s(".dll, exception code: 0xc0000005, fault offset: 0x")
		w.hex(d.u64(), 8)
		w.s(`, path: C:\Program Files\`)
		w.pick(d, vendors)
		w.s(`\`)
		w.s(app)
		w.s(".exe")
	case tException:
		ns, cls := namespaces[d.n(len(namespaces))], classes[d.n(len(classes))]
		w.s("Unhandled exception: System.NullReferenceException: Object reference not set to an instance of an object.\n   at ")
		w.s(ns)
		w.s(".")
		w.s(cls)
		w.s(".Handle() in C:\\src\\")
		w.s(cls)
		w.s(".cs:line ")
		w.u(d.between(12, 900))
		w.s("\n\tat ")
		w.s(ns)
		w.s(".Program.Main()")
	case tLogonFailed:
		w.s("An account failed to log on. Account Name: ")
		w.pick(d, users)
		w.s(" Failure Reason: Unknown user name or bad password. Status: 0xC000006D Source Network Address: ")
		w.ip(d)
	case tConstraint:
		tbl := tables[d.n(len(tables))]
		w.s(`ERROR: duplicate key value violates unique constraint "`)
		w.s(tbl)
		w.s(`_pkey" DETAIL: Key (id)=(`)
		w.u(d.between(1, 9999999))
		w.s(") already exists. STATEMENT: INSERT INTO ")
		w.s(tbl)
		w.s(" VALUES ($1, $2, $3)")
	case tCache:
		w.s("cache ")
		w.pick(d, cacheVerbs)
		w.s(` key="`)
		w.pick(d, tables)
		w.s(":")
		w.u(d.between(1, 500000))
		w.s(`" ttl=`)
		w.u(d.between(30, 3600))
		w.s("s size=")
		w.u(d.between(64, 65536))
		w.s("B shard=")
		w.u(d.between(0, 15))
		w.s(" trace_id=")
		w.hex(d.u64(), 16)
		w.hex(d.u64(), 16)
	case tGCPause:
		w.s("GC pause ")
		w.u(d.between(40, 9000))
		w.s(" µs, heap ")
		w.u(d.between(200, 4000))
		w.s(" MB → ")
		w.u(d.between(100, 2000))
		w.s(" MB, goroutines=")
		w.u(d.between(20, 5000))
	case tUncleanReboot:
		w.s("The system has rebooted without cleanly shutting down first. This error could be caused if the system stopped responding, crashed, or lost power unexpectedly.")
	case tBadBlock:
		w.s(`The device, \Device\Harddisk`)
		n := d.between(0, 3)
		w.u(n)
		w.s(`\DR`)
		w.u(n)
		w.s(", has a bad block at logical block address ")
		w.u(d.between(1000, 3000000000))
		w.s("; controller error 0x")
		w.hex(d.u64(), 4)
		w.s(".")
	case tOOMKill:
		w.s("Out of memory: Killed process ")
		w.u(d.between(300, 4000000))
		w.s(" (")
		w.pick(d, killed)
		w.s(") total-vm:")
		w.u(d.between(1000000, 64000000))
		w.s("kB, anon-rss:")
		w.u(d.between(500000, 32000000))
		w.s("kB, file-rss:0kB, shmem-rss:0kB, UID:")
		w.u(d.between(0, 1001))
	}
}

// The pools as JSON string bodies, escaped once for the generator's append path.
var (
	escapedSources = func() (out [templateCount][]string) {
		for t, srcs := range templateSources {
			out[t] = escapeAll(srcs)
		}
		return out
	}()
	escapedComputers = escapeAll(computers)
	escapedUsers     = escapeAll(users)
)

func escapeAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(appendEscaped(nil, x))
	}
	return out
}
