#!/usr/bin/perl
# Fork server for src/util/spawner.ts. Forking the daemon (~70 MB) for every
# `git ls-remote` costs it milliseconds of CPU; this process is ~5 MB, so its
# fork is cheap. Only modules of perl-base (Essential on Debian) are used.
#
# Requests on stdin: "<id> <maxbytes> <length> <inputlength>\n" (maxbytes 0 = no limit), then
#   <length> bytes of NUL-terminated fields: cwd, file, argc, argv[argc], NAME=VALUE...,
#   then <inputlength> bytes for the command's stdin (0: /dev/null; at most a pipe's capacity).
# Replies on stdout:
#   "started <id> <pid>\n"   right after fork; the child then makes itself a session leader (pgid = pid)
#   "done <id> <code|SIGNAME> <outlen> <errlen>\n" <stdout bytes><stderr bytes>
#   "error <id> <ERRNO>\n"   fork, chdir or exec failed: the command never ran
# End of stdin ends the server; its children live on in their own groups.
#
# Every page this process writes after a fork costs it a copy-on-write fault,
# so the parent's side of a request is kept to few allocations: raw fds
# (POSIX::pipe, no PerlIO handles), plain select() on a bit vector, and the
# tidying up (closing inherited fds, close-on-exec) done in the child.
use strict;
use warnings;
use Config;
use Errno;
use Fcntl qw(F_SETFD FD_CLOEXEC);
use POSIX ();

# Ctrl-C in the terminal reaches the daemon's whole process group: the daemon
# decides when we stop (by closing our stdin), and a vanished reader shows as
# an error from syswrite, not as a fatal SIGPIPE.
$SIG{$_} = 'IGNORE' for qw(PIPE INT HUP QUIT);

# Perl runs signal handlers deferred, between ops, so a self-pipe written by
# the handler could not wake a select() entered just after the signal arrived.
# SIGCHLD interrupts select() (EINTR) instead, and for that instant select()
# gets a timeout whenever a child is not reaped yet.
my $chld = 0;
$SIG{CHLD} = sub { $chld = 1 };

my @signame = split ' ', $Config{sig_name};
my $tick = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
sub now { (POSIX::times())[0] / $tick }    # monotonic, 10 ms steps

# A kid: [id, pid, max, outfd, errfd, statusfd, out, err, status, deadline, wait]
use constant { ID => 0, PID => 1, MAX => 2, OUT => 3, ERR => 4, ST => 5, OBUF => 6, EBUF => 7, STATUS => 8, DEADLINE => 9, WAIT => 10 };
my %kid;          # pid => kid
my %byfd;         # fd => kid, for the stdout and stderr pipes
my $bits = '';    # select() set: stdin and every open fd of %byfd
vec($bits, 0, 1) = 1;
my $in = '';

sub errname {
    my $e = $! + 0;
    for (keys %!) { return $_ if $!{$_} }
    return "ERRNO$e";
}

sub reply {
    my $off = 0;
    while ($off < length $_[0]) {
        my $n = syswrite(STDOUT, $_[0], length($_[0]) - $off, $off);
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            exit 0;    # the daemon is gone
        }
        $off += $n;
    }
}

sub fail {
    my $e = errname();
    POSIX::write($_[0], $e, length $e);
    POSIX::_exit(127);
}

# The child itself fills a pipe with the input before exec: the server does
# no work for it, and a pipe holds 64 KiB (spawner.ts sends at most 16).
sub stdin_from {
    my ($st, $input) = @_;
    if (!length $input) {
        my $null = POSIX::open('/dev/null', POSIX::O_RDONLY());
        return $null;
    }
    my ($r, $w) = POSIX::pipe();
    fail($st) unless defined $r;
    my $off = 0;
    while ($off < length $input) {
        my $n = POSIX::write($w, substr($input, $off), length($input) - $off);
        fail($st) unless defined $n || $!{EINTR};
        $off += $n // 0;
    }
    POSIX::close($w);
    return $r;
}

sub child {
    my ($out, $err, $st, $body, $input) = @_;
    $SIG{$_} = 'DEFAULT' for qw(PIPE INT HUP QUIT CHLD);    # ignored signals would survive exec
    POSIX::sigprocmask(POSIX::SIG_SETMASK(), POSIX::SigSet->new);
    POSIX::setsid();
    # Raw fds are inherited through exec: close the other requests' pipes
    # (their EOF must not wait for us), and let exec close the status pipe.
    POSIX::close($_) for keys %byfd, map { $_->[ST] } values %kid;
    # The server reads this pipe only once we are reaped; were it inherited
    # through exec, that read could block on a grandchild.
    my $sth;
    open($sth, '>&=', $st) && fcntl($sth, F_SETFD, FD_CLOEXEC) or fail($st);
    my @f = split /\0/, $body, -1;
    pop @f;    # after the last NUL
    my ($cwd, $file, $argc) = splice @f, 0, 3;
    my @args = splice @f, 0, $argc;
    fail($st) if length $cwd && !chdir $cwd;
    my $stdin = stdin_from($st, $input);
    POSIX::dup2($stdin, 0) if defined $stdin;
    POSIX::dup2($out, 1);
    POSIX::dup2($err, 2);
    POSIX::close($_) for grep { defined && $_ > 2 } $stdin, $out, $err;
    %ENV = ();
    for (@f) {
        my $i = index $_, '=';
        $ENV{substr $_, 0, $i} = substr $_, $i + 1 if $i > 0;
    }
    { no warnings 'exec'; exec { $file } $file, @args; }    # execvp: no shell, PATH of the new env
    fail($st);
}

# The request's body is only read, from the child's copy of $in, in the child:
# what the parent copies, allocates and frees after a fork costs it page faults.
sub start {
    my ($id, $max, $off, $len, $inlen) = @_;
    my @fds;
    for (1 .. 3) {
        my ($r, $w) = POSIX::pipe();
        if (!defined $r) {
            reply("error $id " . errname() . "\n");
            POSIX::close($_) for @fds;
            return;
        }
        push @fds, $r, $w;
    }
    my ($or, $ow, $er, $ew, $sr, $sw) = @fds;
    if ($or >= 1024 || $er >= 1024) {    # beyond FD_SETSIZE, select() cannot watch them
        reply("error $id EMFILE\n");
        POSIX::close($_) for @fds;
        return;
    }
    my $pid = fork;
    if (!defined $pid) {
        reply("error $id " . errname() . "\n");
        POSIX::close($_) for @fds;
        return;
    }
    if ($pid == 0) {
        POSIX::close($_) for $or, $er, $sr;
        eval { child($ow, $ew, $sw, substr($in, $off, $len), substr($in, $off + $len, $inlen)) };
        POSIX::_exit(127);
    }
    reply("started $id $pid\n");
    POSIX::close($_) for $ow, $ew, $sw;    # so the pipes reach EOF when the child's tree closes them
    my $k = $kid{$pid} = [$id, $pid, $max, $or, $er, $sr, '', '', undef, undef, undef];
    $byfd{$or} = $byfd{$er} = $k;
    vec($bits, $or, 1) = vec($bits, $er, 1) = 1;
}

sub requests {
    my $pos = 0;
    while ((my $nl = index $in, "\n", $pos) >= 0) {
        my ($id, $max, $len, $inlen) = split / /, substr($in, $pos, $nl - $pos);
        $inlen //= 0;
        die "spawner: bad request header\n" unless defined $len && $len =~ /^\d+$/ && $inlen =~ /^\d+$/;
        last if length($in) < $nl + 1 + $len + $inlen;
        start($id, $max, $nl + 1, $len, $inlen);
        $pos = $nl + 1 + $len + $inlen;
    }
    if ($pos == length $in) { $in = '' } else { substr($in, 0, $pos) = '' }
}

sub drop {
    my ($k, $slot) = @_;
    my $fd = $k->[$slot];
    vec($bits, $fd, 1) = 0;
    delete $byfd{$fd};
    POSIX::close($fd);
    $k->[$slot] = undef;
}

sub readable {
    my ($fd) = @_;
    my $k = $byfd{$fd};
    my $slot = defined $k->[OUT] && $k->[OUT] == $fd ? OUT : ERR;
    my $n = POSIX::read($fd, my $buf, 65536);
    return if !defined $n && ($!{EINTR} || $!{EAGAIN});
    return drop($k, $slot) if !$n || $n == 0;    # EOF is "0 but true"
    my $b = \$k->[$slot + 3];    # OBUF or EBUF
    $$b .= $buf;
    my $max = $k->[MAX];
    substr($$b, 0, length($$b) - $max) = '' if $max && length($$b) > 2 * $max;
}

sub reap {
    $chld = 0;
    while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
        my $k = $kid{$pid} or next;
        my $s = ${^CHILD_ERROR_NATIVE};
        $k->[STATUS] = POSIX::WIFSIGNALED($s) ? 'SIG' . $signame[POSIX::WTERMSIG($s)] : POSIX::WEXITSTATUS($s);
        $k->[DEADLINE] = now() + 1 if defined $k->[OUT] || defined $k->[ERR];
    }
}

# A result is complete when the leader is reaped and its pipes are closed, or
# 1 s after the leader exited if something it left behind holds them open.
sub settle {
    my $now;
    for my $k (values %kid) {
        next unless defined $k->[STATUS];
        if (defined $k->[OUT] || defined $k->[ERR]) {
            $now //= now();
            next if $now < $k->[DEADLINE];
            defined $k->[$_] and drop($k, $_) for OUT, ERR;
        }
        delete $kid{$k->[PID]};
        # The child is gone and exec closed the status pipe: this read cannot block.
        my $n = POSIX::read($k->[ST], my $errno, 64);
        POSIX::close($k->[ST]);
        if ($n && $n > 0) {
            reply("error $k->[ID] $errno\n");
            next;
        }
        my $max = $k->[MAX];
        for my $b (@$k[OBUF, EBUF]) {
            substr($b, 0, length($b) - $max) = '' if $max && length($b) > $max;
        }
        reply("done $k->[ID] $k->[STATUS] " . length($k->[OBUF]) . ' ' . length($k->[EBUF]) . "\n$k->[OBUF]$k->[EBUF]");
    }
}

# undef (block) when idle; otherwise the nearest thing that may need us.
sub timeout {
    return 0 if $chld;
    my ($t, $now);
    for my $k (values %kid) {
        my $w;
        if (defined $k->[STATUS]) {
            $now //= now();
            $w = $k->[DEADLINE] - $now;
        } elsif (!defined $k->[OUT] && !defined $k->[ERR]) {
            # Pipes closed but not reaped yet: the leader is in the middle of
            # exiting (the kernel closes files before it signals the parent).
            $w = $k->[WAIT] = ($k->[WAIT] // 0.0005) * 2;
            $w = $k->[WAIT] = 0.5 if $w > 0.5;
        } else {
            $w = 0.5;
        }
        $t = $w if !defined $t || $w < $t;
    }
    return defined $t && $t < 0 ? 0 : $t;
}

while (1) {
    my $n = select(my $ready = $bits, undef, undef, timeout());
    die "spawner: select: $!\n" if $n < 0 && !$!{EINTR};
    if ($n > 0) {
        if (vec($ready, 0, 1)) {
            my $got = sysread(STDIN, $in, 65536, length $in);
            exit 0 if defined $got ? $got == 0 : !($!{EINTR} || $!{EAGAIN});
            requests() if $got;
        }
        for my $fd (keys %byfd) {
            readable($fd) if vec($ready, $fd, 1);
        }
    }
    reap() if $chld || $n == 0;
    settle();
}
