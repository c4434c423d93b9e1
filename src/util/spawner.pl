#!/usr/bin/perl
# Fork server for src/util/spawner.ts. Forking the daemon (~70 MB) for every
# `git ls-remote` costs it milliseconds of CPU; this process is ~5 MB, so its
# fork is cheap. Only modules of perl-base (Essential on Debian) are used.
#
# On stdin:
#   "env <envid> <length>\n" <length> bytes of NUL-terminated NAME=VALUE fields:
#                            an environment, sent once, that requests name by its id
#   "forget\n"               drop every environment (spawner.ts keeps at most 64)
#   "<id> <maxbytes> <length> <inputlength> <envid>\n" (maxbytes 0 = no limit), then
#     <length> bytes of NUL-terminated fields: cwd, file, argc, argv[argc],
#     then <inputlength> bytes for the command's stdin (0: /dev/null; at most a pipe's capacity).
# Replies on stdout:
#   "started <id> <pid>\n"   right after fork; the child then makes itself a session leader (pgid = pid)
#   "done <id> <code|SIGNAME> <outlen> <errlen>\n" <stdout bytes><stderr bytes>
#   "error <id> <ERRNO>\n"   fork, chdir or exec failed: the command never ran
# End of stdin ends the server; its children live on in their own groups.
#
# Every page this process writes after a fork costs it a copy-on-write fault,
# so the parent's side of a request is kept to few allocations: raw fds
# (POSIX::pipe, no PerlIO handles), plain select() on a bit vector, and the
# tidying up (closing inherited fds, close-on-exec) done in the child. The
# child's own perl work is a fault per page too: it finds the environment
# already in place (the parent keeps %ENV as the last request's), and no
# signal disposition to undo.
use strict;
use warnings;
use Config;
use Errno;
use Fcntl qw(F_SETFD FD_CLOEXEC);
use POSIX ();

# Ctrl-C in the terminal goes to the daemon's process group: in a group of
# our own we do not get it, and the daemon decides when we stop (by closing
# our stdin). Nothing is ignored, so a child needs no signal reset before
# exec; a write to a vanished daemon ends us by SIGPIPE, as it should.
POSIX::setpgid(0, 0);
my $nosignals = POSIX::SigSet->new;

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
my $maxfd = 2;    # the highest fd a pipe ever had: a child closes 3 .. $maxfd
my $out = '';     # replies of one turn of the loop, written at once
my %envs;         # envid => "NAME=VALUE\0..."
my $curenv = '';  # the envid %ENV holds
my $lastenv = ''; # the envid of the previous request

sub errname {
    my $e = $! + 0;
    for (keys %!) { return $_ if $!{$_} }
    return "ERRNO$e";
}

sub reply { $out .= $_[0] }

sub flush {
    my $off = 0;
    while ($off < length $out) {
        my $n = syswrite(STDOUT, $out, length($out) - $off, $off);
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            exit 0;    # the daemon is gone
        }
        $off += $n;
    }
    $out = '';
}

sub set_env {
    %ENV = ();
    for (split /\0/, $_[0]) {
        my $i = index $_, '=';
        $ENV{substr $_, 0, $i} = substr $_, $i + 1 if $i > 0;
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
    my ($ow, $ew, $st, $body, $input, $env) = @_;
    POSIX::sigprocmask(POSIX::SIG_SETMASK(), $nosignals);
    POSIX::setsid();
    # Raw fds are inherited through exec: close the other requests' pipes
    # (their EOF must not wait for us), and let exec close the status pipe.
    for (3 .. $maxfd) { POSIX::close($_) unless $_ == $ow || $_ == $ew || $_ == $st }
    # The server reads this pipe only once we are reaped; were it inherited
    # through exec, that read could block on a grandchild.
    my $sth;
    open($sth, '>&=', $st) && fcntl($sth, F_SETFD, FD_CLOEXEC) or fail($st);
    my ($cwd, $file, $argc, @args) = split /\0/, $body, -1;
    pop @args;    # after the last NUL
    fail($st) if length $cwd && !chdir $cwd;
    my $stdin = stdin_from($st, $input);
    POSIX::dup2($stdin, 0) if defined $stdin;
    POSIX::dup2($ow, 1);
    POSIX::dup2($ew, 2);
    POSIX::close($_) for grep { defined && $_ > 2 } $stdin, $ow, $ew;
    set_env($env) if defined $env;
    { no warnings 'exec'; exec { $file } $file, @args; }    # execvp: no shell, PATH of the new env
    fail($st);
}

# The request's body is only read, from the child's copy of $in, in the child:
# what the parent copies, allocates and frees after a fork costs it page faults.
# So do the requests that came together: pipes for all, then the forks one
# after another, then the bookkeeping. Each fork write-protects the pages
# again, and a page the parent writes between two forks faults once per fork.
sub start {
    my @ready;
    for my $r (@_) {
        my ($id, $max, $off, $len, $inlen, $envid) = @$r;
        if (!defined $envs{$envid}) {
            reply("error $id EINVAL\n");
            next;
        }
        my @fds;
        for (1 .. 3) {
            my ($r, $w) = POSIX::pipe();
            if (!defined $r) {
                reply("error $id " . errname() . "\n");
                POSIX::close($_) for @fds;
                @fds = ();
                last;
            }
            push @fds, $r, $w;
        }
        next unless @fds;
        for (@fds) { $maxfd = $_ if $_ > $maxfd }
        if ($fds[0] >= 1024 || $fds[2] >= 1024) {    # beyond FD_SETSIZE, select() cannot watch them
            reply("error $id EMFILE\n");
            POSIX::close($_) for @fds;
            next;
        }
        push @ready, [$id, $max, $off, $len, $inlen, $envid, @fds];
    }
    my @pids;
    for my $r (@ready) {
        my $envid = $r->[5];
        # Two requests in a row with the same environment: the parent takes it
        # on, once, and the children after do nothing for it.
        if ($envid ne $curenv && $envid eq $lastenv) {
            set_env($envs{$envid});
            $curenv = $envid;
        }
        $lastenv = $envid;
        my $pid = fork;
        if (defined $pid && $pid == 0) {
            my (undef, undef, $off, $len, $inlen, undef, $or, $ow, $er, $ew, $sr, $sw) = @$r;
            POSIX::close($_) for $or, $er, $sr;
            eval { child($ow, $ew, $sw, substr($in, $off, $len), substr($in, $off + $len, $inlen), $envid eq $curenv ? undef : $envs{$envid}) };
            POSIX::_exit(127);
        }
        push @pids, $pid // '!' . errname();
    }
    for my $i (0 .. $#ready) {
        my ($id, $max, undef, undef, undef, undef, $or, $ow, $er, $ew, $sr, $sw) = @{$ready[$i]};
        my $pid = $pids[$i];
        if (substr($pid, 0, 1) eq '!') {
            reply("error $id " . substr($pid, 1) . "\n");
            POSIX::close($_) for $or, $ow, $er, $ew, $sr, $sw;
            next;
        }
        reply("started $id $pid\n");
        POSIX::close($_) for $ow, $ew, $sw;    # so the pipes reach EOF when the child's tree closes them
        my $k = $kid{$pid} = [$id, $pid, $max, $or, $er, $sr, '', '', undef, undef, undef];
        $byfd{$or} = $byfd{$er} = $k;
        vec($bits, $or, 1) = vec($bits, $er, 1) = 1;
    }
}

sub requests {
    my $pos = 0;
    my @batch;
    while ((my $nl = index $in, "\n", $pos) >= 0) {
        my @h = split / /, substr($in, $pos, $nl - $pos);
        if ($h[0] eq 'forget') {
            start(splice @batch);    # they name environments about to go
            %envs = ();
            $curenv = $lastenv = '';
            $pos = $nl + 1;
            next;
        }
        if ($h[0] eq 'env') {
            die "spawner: bad env header\n" unless @h == 3 && $h[2] =~ /^\d+$/;
            last if length($in) < $nl + 1 + $h[2];
            $envs{$h[1]} = substr($in, $nl + 1, $h[2]);
            $curenv = '' if $curenv eq $h[1];
            $pos = $nl + 1 + $h[2];
            next;
        }
        my ($id, $max, $len, $inlen, $envid) = @h;
        die "spawner: bad request header\n" unless @h == 5 && $len =~ /^\d+$/ && $inlen =~ /^\d+$/;
        last if length($in) < $nl + 1 + $len + $inlen;
        push @batch, [$id, $max, $nl + 1, $len, $inlen, $envid];
        $pos = $nl + 1 + $len + $inlen;
    }
    start(@batch);
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
            if (defined $got ? $got == 0 : !($!{EINTR} || $!{EAGAIN})) {
                flush();
                exit 0;
            }
            requests() if $got;
        }
        for my $fd (keys %byfd) {
            readable($fd) if vec($ready, $fd, 1);
        }
    }
    reap() if $chld || $n == 0;
    settle();
    flush() if length $out;
}
